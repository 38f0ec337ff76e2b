from __future__ import annotations

import functools
import itertools
import re
import sys
import textwrap

import pytest

from hptune.exceptions import ConfigError
from hptune.tasks import (
    Task,
    _registry,
    classify,
    get_task,
    list_tasks,
    register_task,
    resolve_task,
)
from hptune.trial import Trial

FORMS = (
    "or name your own as 'package.module:function' (a function with no arguments that "
    "returns an hptune.tasks.Task, or an objective (config, trial) -> float)"
)

USER_MODULE = """
import torch
from hptune.tasks import Task, TaskData, digits_mlp

CALLS = []

def make_task():
    CALLS.append(1)
    return digits_mlp()

task_instance = digits_mlp()

def objective(config, trial):
    trial.report(0, config["x"])
    return config["x"] * 2.0

def objective_with_default(config, trial=None):
    return 1.0

def needs_config(config):
    return digits_mlp()

def needs_keyword(*, size):
    return digits_mlp()

def returns_wrong_type():
    return torch.nn.Linear(2, 2)

def raises():
    raise RuntimeError("no GPU here")

not_callable = 42
"""

_counter = itertools.count()


@pytest.fixture
def registry(monkeypatch):
    """A private copy of the registry, so registrations never leak into other tests."""
    monkeypatch.setattr(_registry, "_REGISTRY", dict(_registry._REGISTRY))
    monkeypatch.setattr(_registry, "_MADE", {})


@pytest.fixture
def write_module(tmp_path, monkeypatch):
    """Write a uniquely named module on sys.path; return its name."""
    monkeypatch.syspath_prepend(str(tmp_path))
    names = []

    def write(source: str) -> str:
        name = f"hptune_user_tasks_{next(_counter)}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        names.append(name)
        return name

    yield write
    for name in names:
        sys.modules.pop(name, None)


def test_builtins_are_listed_and_resolve_to_tasks():
    assert {"mnist1d-mlp", "mnist1d-cnn", "digits-mlp"} <= set(list_tasks())
    assert list_tasks() == sorted(list_tasks())
    task = get_task("mnist1d-mlp")
    assert isinstance(task, Task) and task.name == "mnist1d-mlp"
    assert get_task("mnist1d-mlp") is task  # a factory's task is made once


def test_unknown_name_lists_known_tasks_and_the_module_form():
    known = ", ".join(list_tasks())
    with pytest.raises(
        ConfigError,
        match=re.escape(
            f"unknown task 'mnist-mlp'. Did you mean 'mnist1d-mlp'? Known tasks: {known}; {FORMS}."
        ),
    ):
        resolve_task("mnist-mlp")
    with pytest.raises(
        ConfigError, match=re.escape(f"unknown task 'zzz'. Known tasks: {known}; {FORMS}.")
    ):
        get_task("zzz")
    with pytest.raises(
        ConfigError, match=re.escape(f"task must be a non-empty string, got None; {FORMS}.")
    ):
        resolve_task(None)


def test_register_task_factory_is_called_once_on_first_use(registry):
    calls = []

    def factory():
        calls.append(1)
        return get_task("digits-mlp")

    register_task("my-digits", factory)
    assert calls == [] and "my-digits" in list_tasks()
    assert get_task("my-digits") is get_task("my-digits")
    assert calls == [1]


def test_register_task_rejects_bad_and_duplicate_names(registry):
    with pytest.raises(
        ConfigError,
        match=re.escape("register_task: name 'My Task' must match [a-z0-9][a-z0-9._-]*"),
    ):
        register_task("My Task", get_task("digits-mlp"))
    with pytest.raises(ConfigError, match=re.escape("register_task: name 'a:b' must match")):
        register_task("a:b", get_task("digits-mlp"))
    with pytest.raises(
        ConfigError,
        match=re.escape(
            "register_task: task 'digits-mlp' is already registered; pass overwrite=True"
        ),
    ):
        register_task("digits-mlp", get_task("mnist1d-mlp"))
    register_task("digits-mlp", get_task("mnist1d-mlp"), overwrite=True)
    assert get_task("digits-mlp").name == "mnist1d-mlp"


def test_registered_objective_resolves_but_is_not_a_task(registry):
    def objective(config, trial):
        return 0.5

    register_task("quadratic", objective)
    assert resolve_task("quadratic") is objective
    with pytest.raises(
        ConfigError,
        match=re.escape("task 'quadratic' is an objective (config, trial) -> float, not a Task"),
    ):
        get_task("quadratic")


def test_module_factory_and_task_instance_resolve_to_tasks(write_module):
    module = write_module(USER_MODULE)
    task = resolve_task(f"{module}:make_task")
    assert isinstance(task, Task) and task.name == "digits-mlp"
    assert sys.modules[module].CALLS == [1]
    assert resolve_task(f"{module}:task_instance") is sys.modules[module].task_instance


def test_module_objective_resolves_to_the_function_and_runs(write_module):
    module = write_module(USER_MODULE)
    objective = resolve_task(f"{module}:objective")
    assert objective is sys.modules[module].objective
    reports = []
    trial = Trial(
        0, {"x": 1.5}, seed=0, reporter=lambda step, value: reports.append((step, value)) or False
    )
    assert objective(trial.config, trial) == 3.0 and reports == [(0, 1.5)]
    assert (
        resolve_task(f"{module}:objective_with_default")
        is sys.modules[module].objective_with_default
    )


@pytest.mark.parametrize(
    ("attr", "message"),
    [
        (
            "needs_config",
            "task '{ref}': 'needs_config' requires the arguments (config), but a task must be a "
            "factory callable with no arguments that returns an hptune.tasks.Task (its "
            "build_model(config) gets the config), or an objective taking (config, trial).",
        ),
        (
            "needs_keyword",
            "task '{ref}': 'needs_keyword' requires the arguments (size= (keyword-only)), but",
        ),
        (
            "returns_wrong_type",
            "task '{ref}': the factory returned Linear, expected an hptune.tasks.Task; return "
            "Task(name=..., build_model=..., datasets=..., ...).",
        ),
        ("raises", "task '{ref}': its factory raised RuntimeError: no GPU here"),
        ("not_callable", "task '{ref}' is 42, which is not a Task and not callable; " + FORMS),
        (
            "missing",
            "task '{ref}': module '{module}' has no attribute 'missing'; check the name after the ':'.",
        ),
    ],
)
def test_module_form_errors_name_the_cause(write_module, attr, message):
    module = write_module(USER_MODULE)
    ref = f"{module}:{attr}"
    with pytest.raises(ConfigError, match=re.escape(message.format(ref=ref, module=module))):
        resolve_task(ref)


def test_module_import_errors_are_config_errors_with_the_cause(write_module):
    broken = write_module("import numpy\nraise ImportError('needs a CUDA build of torch')\n")
    with pytest.raises(
        ConfigError,
        match=re.escape(
            f"task '{broken}:make_task': cannot import module '{broken}': ImportError: needs a CUDA build of torch. Check the module is on the Python path and imports cleanly."
        ),
    ) as info:
        resolve_task(f"{broken}:make_task")
    assert isinstance(info.value.__cause__, ImportError)
    with pytest.raises(
        ConfigError,
        match=re.escape(
            "cannot import module 'no_such_module_xyz': ModuleNotFoundError: No module named 'no_such_module_xyz'"
        ),
    ):
        resolve_task("no_such_module_xyz:make_task")
    with pytest.raises(
        ConfigError, match=re.escape("task 'a:b:c' must have the form 'package.module:function'.")
    ):
        resolve_task("a:b:c")


def test_module_in_the_current_directory_is_importable(tmp_path, monkeypatch):
    (tmp_path / "hptune_cwd_tasks.py").write_text(
        "from hptune.tasks import digits_mlp as make_task\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    try:
        assert resolve_task("hptune_cwd_tasks:make_task").name == "digits-mlp"
        assert sys.path[-1] == str(tmp_path)  # appended: shadows no installed package
    finally:
        sys.modules.pop("hptune_cwd_tasks", None)


def _three(a, config, trial):
    return 0.0


@pytest.mark.parametrize(
    ("obj", "kind"),
    [
        (lambda: None, "factory"),
        (lambda config=None, trial=None: None, "factory"),  # callable with no arguments
        (lambda config, trial: 0.0, "objective"),
        (lambda *args: 0.0, "factory"),
        (lambda config, *rest: 0.0, "objective"),
        (functools.partial(_three, 1), "objective"),
    ],
)
def test_classify_by_signature(obj, kind):
    assert classify(obj) == kind


def test_classify_refuses_three_required_arguments():
    with pytest.raises(
        ConfigError,
        match=re.escape("task: '_three' requires the arguments (a, config, trial), but"),
    ):
        classify(_three)
