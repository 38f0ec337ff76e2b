"""LR schedulers by name: a registry over ``torch.optim.lr_scheduler``, plus warmup.

``create_lr_scheduler(optimizer, "cosine", T_max=1000)`` builds torch's own scheduler;
option names are torch's (``T_max``, ``eta_min``, ``factor``, ``patience``, ``step_size``,
``gamma``, ``milestones``, ``T_0``, ``T_mult``, ...). Names ignore case and accept ``-`` for
``_`` (``"cosine-warm-restarts"``). Every scheduler here is stepped once per optimizer step,
except ``plateau``, which is stepped with the metric at evaluation time.

Where torch has no default, or one that would silently wreck a run, hptune documents its
choice in the factory below: ``T_max``, ``T_0``, ``gamma`` (exponential), ``step_size``,
``milestones`` and ``total_iters`` (linear, polynomial; torch's 5 would end training at its
final LR after five steps) must be given; ``cyclic`` and ``onecycle`` take the optimizer's
LR of each group as ``max_lr``; both leave momentum alone unless ``cycle_momentum=True``,
because hptune tunes momentum and beta1 as hyperparameters of their own.
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from hptune.exceptions import ConfigError
from hptune.training import _scheduler_factories as _f
from hptune.training._warmup import WarmupScheduler, check_warmup_steps, scheduler_needs_metric

__all__ = [
    "WarmupScheduler",
    "create_lr_scheduler",
    "list_schedulers",
    "needs_metric",
    "register_scheduler",
]

logger = logging.getLogger("hptune.training.schedulers")

_REQUIRED = inspect.Parameter.empty
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class _Entry:
    name: str
    factory: Callable[..., Any]
    options: dict[str, Any]  # option name -> default, or _REQUIRED
    any_options: bool  # the factory takes **kwargs
    needs_metric: bool


_REGISTRY: dict[str, _Entry] = {}
_ALIASES: dict[str, str] = {}


def _normalize(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def _signature_options(factory: Callable[..., Any]) -> tuple[dict[str, Any], bool]:
    params = list(inspect.signature(factory).parameters.values())[1:]  # skip the optimizer
    options = {
        p.name: p.default
        for p in params
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "last_epoch"
    }
    return options, any(p.kind is p.VAR_KEYWORD for p in params)


def register_scheduler(
    name: str,
    factory: Callable[..., Any] | None = None,
    *,
    needs_metric: bool = False,
    aliases: Sequence[str] = (),
    overwrite: bool = False,
) -> Any:
    """Register ``factory(optimizer, **options) -> scheduler`` under ``name``.

    The factory's keyword parameters are the scheduler's options: those without a default
    are required, and any other keyword is refused with the list of valid ones (unless the
    factory takes ``**kwargs``). A torch scheduler class works as a factory as it is. Used
    as a decorator when ``factory`` is left out.

    Args:
        name: Lower-case name; ``-`` and ``_`` are interchangeable.
        factory: Callable taking the optimizer first, then the options by keyword.
        needs_metric: True if the scheduler is stepped with a metric, like ReduceLROnPlateau.
        aliases: Other names for the same scheduler.
        overwrite: Replace an existing registration instead of raising.

    Example:
        >>> import torch
        >>> register_scheduler("lambda_half", lambda opt: torch.optim.lr_scheduler.LambdaLR(
        ...     opt, lambda step: 0.5), overwrite=True)
        >>> opt = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=0.1)
        >>> create_lr_scheduler(opt, "lambda-half").get_last_lr()
        [0.05]
    """
    if factory is None:

        def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
            register_scheduler(
                name, fn, needs_metric=needs_metric, aliases=aliases, overwrite=overwrite
            )
            return fn

        return decorator
    keys = [_normalize(key) for key in (name, *aliases)]
    for key in keys:
        if not _NAME.match(key):
            raise ConfigError(
                f"Scheduler name {key!r} is invalid: use lower-case letters, digits and "
                "'_' or '-', starting with a letter."
            )
        if not overwrite and (key in _REGISTRY or key in _ALIASES):
            raise ConfigError(
                f"Scheduler {key!r} is already registered. Pass overwrite=True to replace it."
            )
    options, any_options = _signature_options(factory)
    _REGISTRY[keys[0]] = _Entry(keys[0], factory, options, any_options, needs_metric)
    _ALIASES.pop(keys[0], None)
    for alias in keys[1:]:
        _ALIASES[alias] = keys[0]
    return None


def list_schedulers() -> list[str]:
    """The registered scheduler names, sorted (aliases left out)."""
    return sorted(_REGISTRY)


def _entry(name: str) -> _Entry:
    if not isinstance(name, str):
        raise ConfigError(f"Scheduler name must be a string, got {name!r}.")
    key = _normalize(name)
    key = _ALIASES.get(key, key)
    if key not in _REGISTRY:
        raise ConfigError(
            f"Unknown scheduler {name!r}. Valid names: {', '.join(list_schedulers())}."
        )
    return _REGISTRY[key]


def needs_metric(scheduler: Any) -> bool:
    """Whether a scheduler (object or registered name) is stepped with a metric.

    True for ``ReduceLROnPlateau``, for a :class:`WarmupScheduler` that wraps one, and for
    names registered with ``needs_metric=True``. A training loop calls ``step(metric)`` on
    these at evaluation time.
    """
    if isinstance(scheduler, str):
        return _entry(scheduler).needs_metric
    return scheduler_needs_metric(scheduler)


def _check_options(entry: _Entry, options: dict[str, Any]) -> None:
    if "verbose" in options:
        raise ConfigError(
            f"Scheduler {entry.name!r}: the 'verbose' option was removed from torch's LR "
            "schedulers in torch 2.7 and is not accepted. Leave it out: hptune logs LR "
            "changes itself (logger 'hptune.training.schedulers')."
        )
    if not entry.any_options:
        unknown = sorted(set(options) - set(entry.options))
        if unknown:
            valid = ", ".join(entry.options) or "none"
            raise ConfigError(
                f"Scheduler {entry.name!r} has no option(s) {', '.join(unknown)}. "
                f"Valid options: {valid}."
            )
    missing = [k for k, v in entry.options.items() if v is _REQUIRED and k not in options]
    if missing:
        example = ", ".join(f"{k}=..." for k in missing)
        raise ConfigError(
            f"Scheduler {entry.name!r} needs option(s) {', '.join(missing)}, which have no "
            f"default. Pass create_lr_scheduler(optimizer, {entry.name!r}, {example})."
        )


def create_lr_scheduler(
    optimizer: torch.optim.Optimizer,
    name: str,
    *,
    warmup_steps: int = 0,
    warmup_start_factor: float = 0.0,
    **options: Any,
) -> Any:
    """Build the registered scheduler ``name`` on ``optimizer``, optionally behind warmup.

    With ``warmup_steps > 0`` the scheduler is wrapped in :class:`WarmupScheduler`: the LR
    rises linearly over ``warmup_steps`` optimizer steps to the LR the scheduler starts
    from, and the scheduler's own clock starts when warmup ends (so ``onecycle`` then runs
    for ``warmup_steps + total_steps`` steps in all). With ``warmup_steps=0`` the torch
    scheduler itself is returned.

    Args:
        optimizer: The optimizer to schedule.
        name: A name from :func:`list_schedulers` (``-`` or ``_``, any case).
        warmup_steps: Optimizer steps of linear warmup in front; 0 for none.
        warmup_start_factor: Fraction of the LR at warmup step 0 (see WarmupScheduler).
        **options: The scheduler's options, under torch's names.

    Raises:
        ConfigError: For an unknown name, an unknown or missing option, a bad value, or
            ``verbose`` (removed from torch in 2.7).

    Example:
        >>> import torch
        >>> opt = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=0.1)
        >>> sched = create_lr_scheduler(opt, "cosine", T_max=100, warmup_steps=10)
        >>> sched.get_last_lr()
        [0.0]
    """
    entry = _entry(name)
    _check_options(entry, options)
    check_warmup_steps(warmup_steps)
    try:
        scheduler = entry.factory(optimizer, **options)
    except (ValueError, TypeError) as err:
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(f"Scheduler {entry.name!r} rejected its options: {err}") from err
    if entry.needs_metric and not scheduler_needs_metric(scheduler):
        _mark_metric_driven(entry.name, scheduler)
    if warmup_steps == 0:
        return scheduler
    return WarmupScheduler(
        optimizer, warmup_steps, after=scheduler, start_factor=warmup_start_factor
    )


def _mark_metric_driven(name: str, scheduler: Any) -> None:
    """Record on the object what its registration says, so that :func:`needs_metric` and a
    :class:`WarmupScheduler` around it know to feed it metrics rather than plain steps."""
    try:
        scheduler.needs_metric = True
    except AttributeError as err:
        raise ConfigError(
            f"Scheduler {name!r} is registered with needs_metric=True, but its object "
            f"({type(scheduler).__name__}) does not take a 'needs_metric' attribute. Give "
            "its class a class attribute needs_metric = True."
        ) from err


def _register_builtins() -> None:
    builtins: list[tuple[str, Callable[..., Any], tuple[str, ...]]] = [
        ("constant", _f.constant, ()),
        ("step", _f.step, ("step_lr",)),
        ("multistep", _f.multistep, ("multi_step",)),
        ("exponential", _f.exponential, ()),
        ("cosine", _f.cosine, ("cosine_annealing",)),
        ("cosine_warm_restarts", _f.cosine_warm_restarts, ("sgdr",)),
        ("cyclic", _f.cyclic, ()),
        ("onecycle", _f.onecycle, ("one_cycle",)),
        ("linear", _f.linear, ()),
        ("polynomial", _f.polynomial, ("poly",)),
    ]
    for name, factory, aliases in builtins:
        register_scheduler(name, factory, aliases=aliases)
    register_scheduler("plateau", _f.plateau, needs_metric=True, aliases=("reduce_lr_on_plateau",))


_register_builtins()
