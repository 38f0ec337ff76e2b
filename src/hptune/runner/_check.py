"""Check a spec before anything runs, so a bad spec never starts a run: everything ``run``
checks before its first trial, in one function that ``validate`` calls too. Every kind of
config the space can produce goes through the recipe and the task's model, the strategy
and pruner are built with their options, the device and the workers are checked against
this machine, and an existing study is checked for a changed meaning; each problem is
reported with the spec's file, line and key path."""

from __future__ import annotations

import json
from typing import Any

from hptune.exceptions import HptuneError
from hptune.spec import StudySpec, spec_error, wants_lr_auto

#: Configs checked by :func:`check_spec` at most (the grid at one point per dimension).
_MAX_CHECKED_CONFIGS = 200


def check_spec(spec: StudySpec) -> None:
    """Everything ``run`` checks before its first trial beyond what the spec's parser
    checked (keys, types, the metric and its direction, the training options), so a bad
    spec never starts one and ``validate`` passes exactly the specs ``run`` accepts: the
    strategy and pruner with their options, the device and the number of workers on this
    machine, the storage's folder, a changed meaning for an existing study (read, never
    created), the task, and every kind of config the space can produce against the recipe
    and the task's model (each conditional branch and choice, and each numeric range at
    both of its ends).

    Raises:
        SpecError: Every problem, each with the spec's file, line and key path.
    """
    space = spec.build_space()
    problems = _run_problems(spec, space)
    task = _resolve_task(spec, problems)
    if task is not None:
        problems += _space_problems(space, task)
    elif wants_lr_auto(spec.space) and not any(path == ("task",) for path, _ in problems):
        from hptune.runner._lr_auto import NEEDS_MODEL_TASK

        problems.append((("space", "lr"), NEEDS_MODEL_TASK.format(task="this task")))
    if problems:
        raise spec_error(spec, problems)


Problem = tuple[tuple[str, ...], str]

#: Worker processes per core beyond which a spec is refused: each imports torch (hundreds
#: of MB), and more than a few per core only queue for the CPU.
WORKERS_PER_CORE = 4


def _tracking_problems(spec: StudySpec) -> list[Problem]:
    """Each tracker of the spec built as ``run`` builds it: its package must be there."""
    from hptune.tracking import create_tracker

    problems: list[Problem] = []
    for name, options in spec.tracking.items():
        try:
            create_tracker(name, options)
        except HptuneError as exc:
            problems.append((("tracking", name), str(exc)))
    return problems


def _run_problems(spec: StudySpec, space: Any) -> list[Problem]:
    """What the study and its executor would refuse when ``run`` opens them."""
    from hptune.execution._plan import available_cpus
    from hptune.runner._meaning import check_same_meaning, check_warm_start
    from hptune.study import create_pruner, create_strategy
    from hptune.study._storage import check_storage_url

    problems: list[Problem] = []
    for key, build in (
        (
            "strategy",
            lambda: create_strategy(spec.strategy, **spec.strategy_options).check_space(space),
        ),
        (
            "pruner",
            lambda: create_pruner(spec.pruner, epochs=spec.budget.epochs, **spec.pruner_options),
        ),
        ("storage", lambda: check_storage_url(spec.storage)),
        ("training", lambda: _check_device(spec.training.device)),
        ("name", lambda: check_same_meaning(spec)),
        ("warm_start", lambda: check_warm_start(spec)),
    ):
        try:
            build()
        except HptuneError as exc:
            problems.append(((key, "device") if key == "training" else (key,), str(exc)))
    problems += _tracking_problems(spec)
    cores = available_cpus()
    if spec.workers > WORKERS_PER_CORE * cores:
        problems.append(
            (
                ("workers",),
                f"{spec.workers} worker processes on {cores} cores cannot run: each loads "
                f"torch; use at most {WORKERS_PER_CORE * cores}",
            )
        )
    return problems


def _check_device(device: str) -> None:
    """Refuse a CUDA device this machine does not have (``cuda:99``, or CUDA on a CPU-only
    machine), as the recipe would at its first trial."""
    if not device.startswith("cuda"):
        return
    import torch

    from hptune.exceptions import ConfigError

    index = int(device.partition(":")[2] or 0)
    count = torch.cuda.device_count()
    if index >= count:
        have = f"{count} GPU(s): cuda:0..cuda:{count - 1}" if count else "no GPU"
        raise ConfigError(f"device {device!r} does not exist here ({have}); use 'auto' or 'cpu'")


def _resolve_task(spec: StudySpec, problems: list[Problem]) -> Any:
    """The spec's task when it is a :class:`~hptune.tasks.Task`; None for a full objective
    (its config is its own business) or a task that does not resolve (a problem then)."""
    from hptune.tasks import Task, resolve_task

    try:
        task = resolve_task(spec.task)
    except HptuneError as exc:
        problems.append((("task",), str(exc)))
        return None
    return task if isinstance(task, Task) else None


def _space_problems(space: Any, task: Any) -> list[Problem]:
    """What the recipe and the task's model reject, one problem per key path."""
    from hptune.space import Conditional

    dims = dict(space.dimensions())
    branches = {name for name, dim in dims.items() if isinstance(dim, Conditional)}
    check = _ConfigCheck(task, branches)
    found: dict[tuple[str, ...], str] = {}
    kinds = _kinds(space, dims)
    for config in kinds:
        for path, message in check(config):
            found.setdefault(path, message)
    if found:
        return list(found.items())
    for name, side, bound, config in _range_ends(space, dims, kinds):
        for _, message in check(config):
            where = ("space", *name.split("."))
            found.setdefault(
                where, f"{dims[name]!r} reaches {bound!r} at its {side} end: {message}"
            )
    return list(found.items())


def _kinds(space: Any, dims: dict[str, Any]) -> list[dict[str, Any]]:
    """Every kind of config: the grid with one point per numeric dimension (each choice
    value and branch combined), or, when that grid is large, each choice value and branch
    once on a base config."""
    from hptune.space import Choice, Conditional

    if space.grid_size(n_points=1) <= _MAX_CHECKED_CONFIGS:
        return space.grid(n_points=1)
    base = {name: dim.grid_values(1)[0] for name, dim in dims.items()}
    kinds = [_config_from(space, base)]
    for name, dim in dims.items():
        if isinstance(dim, (Choice, Conditional)):
            kinds += [_config_from(space, {**base, name: v}) for v in dim.grid_values(1)[1:]]
    return kinds


def _range_ends(space: Any, dims: dict[str, Any], kinds: list[dict[str, Any]]) -> Any:
    """``(parameter, "low" | "high", bound, config)``: a config of ``kinds`` that has the
    numeric parameter, with the parameter moved to each end of its range."""
    from hptune.space import FloatDimension, IntDimension

    flat = [space.flatten(config) for config in kinds]
    for name, dim in dims.items():
        if not isinstance(dim, (FloatDimension, IntDimension)) or not dim.low < dim.high:
            continue
        params = next((p for p in flat if name in p), None)
        if params is None:
            continue
        for side, bound in (("low", dim.low), ("high", dim.high)):
            yield name, side, bound, _config_from(space, {**params, name: bound})


def _config_from(space: Any, params: dict[str, Any]) -> dict[str, Any]:
    """The config ``space.sample`` gives for these parameter values (extra ones unused)."""
    import optuna

    return space.sample(optuna.trial.FixedTrial(params))


class _ConfigCheck:
    """``check(config) -> [(key path, message)]``: what the recipe
    (:func:`hptune.training.config_problems`) and the task's model reject in one config,
    at the space's key paths. Models are built once per distinct ``model`` section."""

    def __init__(self, task: Any, branches: set[str]) -> None:
        self.task, self.branches = task, branches
        self.models: dict[str, list[Problem]] = {}

    def __call__(self, config: dict[str, Any]) -> list[Problem]:
        from hptune.training import CONFIG_KEYS, config_problems

        problems = [
            (self._path(path, config), message) for path, message in config_problems(config)
        ]
        known = {k: v for k, v in config.items() if k in CONFIG_KEYS}
        return problems + self._model(known)

    def _path(self, path: tuple[str, ...], config: dict[str, Any]) -> tuple[str, ...]:
        """A path within the config as a path in the space: a conditional key's branch
        sits between the key and its options."""
        key, value = path[0], config.get(path[0])
        if key in self.branches and isinstance(value, dict):
            return ("space", key, str(value.get("name")), *path[1:])
        return ("space", *path)

    def _model(self, config: dict[str, Any]) -> list[Problem]:
        section = config.get("model")
        key = json.dumps(section, sort_keys=True, default=repr)
        if key not in self.models:
            self.models[key] = self._build(config, section)
        return self.models[key]

    def _build(self, config: dict[str, Any], section: Any) -> list[Problem]:
        from hptune.training import message_of

        exc = _error(self.task.build_model, config)
        if exc is None:
            return []
        if isinstance(section, dict):  # blame the first option that fails on its own
            for option, value in section.items():
                alone = _error(self.task.build_model, {**config, "model": {option: value}})
                if alone is not None:
                    message = message_of(alone).removeprefix(f"model.{option}: ")
                    return [(("space", "model", str(option)), message)]
        where = ("space", "model") if "model" in config else ("space",)
        return [(where, f"the task's model cannot be built: {message_of(exc)}")]


def _error(action: Any, *args: Any) -> BaseException | None:
    """The exception ``action(*args)`` raises (what a trial would fail with), or None."""
    try:
        action(*args)
    except Exception as exc:
        return exc
    return None
