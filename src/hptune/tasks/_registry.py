"""The task registry: names the CLI and YAML spec use, and ``package.module:function``.

A name resolves to one of two things, told apart by what the object *is*, never by a guess
at what it returns:

* a :class:`Task` (the recipe trains it): a ``Task`` instance, or a **factory** — a
  callable that can be called with no arguments and returns a ``Task``;
* an **objective** — a callable taking ``(config, trial)`` and returning the metric: it
  trains by itself and the recipe is not involved.

A callable with one required argument (``f(config)``) is neither and is refused: a factory's
model already receives the config through ``Task.build_model(config)``.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import os
import re
import sys
from collections.abc import Callable
from typing import Any, Literal

from hptune.exceptions import ConfigError, HptuneError
from hptune.tasks._builtin import BUILTIN_TASKS
from hptune.tasks._task import Task
from hptune.trial import Trial

#: ``objective(config, trial) -> float``: a user function that trains and evaluates itself.
Objective = Callable[[dict[str, Any], Trial], float]
Kind = Literal["task", "factory", "objective"]

_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")
_FORMS = (
    "or name your own as 'package.module:function' (a function with no arguments that "
    "returns an hptune.tasks.Task, or an objective (config, trial) -> float)"
)

# name -> (kind, object); factories are called on first use and their Task kept in _MADE.
_REGISTRY: dict[str, tuple[Kind, Any]] = {}
_MADE: dict[str, Task] = {}


def register_task(name: str, task: Task | Callable[..., Any], *, overwrite: bool = False) -> None:
    """Make ``name`` usable as ``task:`` in a spec and in :func:`resolve_task`.

    Args:
        name: Lowercase letters, digits, ``.``, ``_``, ``-``; ``:`` is reserved for the
            ``package.module:function`` form.
        task: A :class:`Task`, a factory ``() -> Task`` (called on first use, once), or an
            objective ``(config, trial) -> float``.
        overwrite: Replace an existing registration instead of raising.

    Example:
        >>> from hptune.tasks import digits_mlp
        >>> register_task("my-digits", digits_mlp)
        >>> "my-digits" in list_tasks()
        True
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigError(
            f"register_task: name {name!r} must match [a-z0-9][a-z0-9._-]* (lowercase "
            "letters, digits, '.', '_', '-'; ':' is reserved for 'package.module:function'); "
            "rename it, e.g. 'my-task'."
        )
    if name in _REGISTRY and not overwrite:
        raise ConfigError(
            f"register_task: task {name!r} is already registered; pass overwrite=True to "
            "replace it, or choose another name."
        )
    _REGISTRY[name] = (classify(task, f"task {name!r}"), task)
    _MADE.pop(name, None)


def list_tasks() -> list[str]:
    """The registered task names (built-ins included), sorted."""
    return sorted(_REGISTRY)


def resolve_task(name: str) -> Task | Objective:
    """A registered name or ``"package.module:function"``, as a :class:`Task` or objective.

    Callers tell the two apart with ``isinstance(result, Task)``. For the module form, the
    current directory is importable (appended to ``sys.path``, so it shadows nothing) and a
    factory is called on every resolve (a registered factory only once).

    Raises:
        ConfigError: Unknown name, unimportable module, missing attribute, or an object that
            is neither a task, a factory nor an objective (the message says which and why).
    """
    if not isinstance(name, str) or not name:
        raise ConfigError(f"task must be a non-empty string, got {name!r}; {_FORMS}.")
    if ":" in name:
        obj = _import_object(name)
        kind = classify(obj, f"task {name!r}")
        return _make(name, obj) if kind == "factory" else obj
    if name not in _REGISTRY:
        raise ConfigError(_unknown(name))
    kind, obj = _REGISTRY[name]
    if kind != "factory":
        return obj
    if name not in _MADE:
        _MADE[name] = _make(name, obj)
    return _MADE[name]


def get_task(name: str) -> Task:
    """Like :func:`resolve_task`, but only a :class:`Task` is accepted.

    Raises:
        ConfigError: As :func:`resolve_task`, or ``name`` is an objective.
    """
    resolved = resolve_task(name)
    if not isinstance(resolved, Task):
        raise ConfigError(
            f"task {name!r} is an objective (config, trial) -> float, not a Task: it trains "
            "itself, so there is no model or data set to build; run it with "
            "study.optimize(objective) or use resolve_task()."
        )
    return resolved


def classify(obj: Any, what: str = "task") -> Kind:
    """``"task"``, ``"factory"`` or ``"objective"`` for ``obj``, from its type and signature.

    A callable that needs no argument is a factory; one that accepts two positional
    arguments and needs at most two is an objective. ``what`` is named in the error.
    """
    if isinstance(obj, Task):
        return "task"
    if not callable(obj):
        raise ConfigError(f"{what} is {obj!r}, which is not a Task and not callable; {_FORMS}.")
    try:
        params = list(inspect.signature(obj).parameters.values())
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{what}: cannot read the signature of {obj!r} ({exc}).") from exc
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    takes_varargs = any(p.kind is p.VAR_POSITIONAL for p in params)
    needs_keyword = [p.name for p in params if p.kind is p.KEYWORD_ONLY and p.default is p.empty]
    if not needs_keyword and not required:
        return "factory"
    if not needs_keyword and len(required) <= 2 and (len(positional) >= 2 or takes_varargs):
        return "objective"
    needed = [p.name for p in required] + [f"{name}= (keyword-only)" for name in needs_keyword]
    raise ConfigError(
        f"{what}: {getattr(obj, '__qualname__', obj)!r} requires the arguments "
        f"({', '.join(needed)}), "
        "but a task must be a factory callable with no arguments that returns an "
        "hptune.tasks.Task (its build_model(config) gets the config), or an objective "
        "taking (config, trial)."
    )


def _make(name: str, factory: Callable[[], Any]) -> Task:
    try:
        task = factory()
    except HptuneError:
        raise
    except Exception as exc:
        raise ConfigError(f"task {name!r}: its factory raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(task, Task):
        raise ConfigError(
            f"task {name!r}: the factory returned {type(task).__name__}, expected an "
            "hptune.tasks.Task; return Task(name=..., build_model=..., datasets=..., ...)."
        )
    return task


def _import_object(ref: str) -> Any:
    module_name, _, attr = ref.partition(":")
    if not module_name or not attr or ":" in attr:
        raise ConfigError(f"task {ref!r} must have the form 'package.module:function'.")
    if os.getcwd() not in sys.path and "" not in sys.path:
        # As uvicorn and gunicorn do: `task: mytasks:make_task` finds ./mytasks.py.
        sys.path.append(os.getcwd())
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:  # the user's module may fail in any way while importing
        raise ConfigError(
            f"task {ref!r}: cannot import module {module_name!r}: {type(exc).__name__}: "
            f"{exc}. Check the module is on the Python path and imports cleanly."
        ) from exc
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ConfigError(
                f"task {ref!r}: module {module_name!r} has no attribute {attr!r}; check the "
                "name after the ':'."
            )
        obj = getattr(obj, part)
    return obj


def _unknown(name: str) -> str:
    close = difflib.get_close_matches(name, list(_REGISTRY), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"unknown task {name!r}.{hint} Known tasks: {', '.join(list_tasks())}; {_FORMS}."


for _name, _factory in BUILTIN_TASKS.items():
    register_task(_name, _factory)
