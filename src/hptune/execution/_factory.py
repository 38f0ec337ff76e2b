"""Choosing the executor of an ``optimize`` call.

``executor`` may be an :class:`~hptune.execution.Executor` or a name: ``"inline"`` (trials
in the driver), ``"process"`` (persistent spawn workers, :class:`ProcessExecutor`) or
``"ray"`` (:class:`RayExecutor`; ``executor_options`` such as ``ray_address``,
``num_cpus_per_trial``, ``num_gpus_per_trial``). ``None`` picks inline for one worker and
the process pool for more, or for a ``trial_timeout`` (only a process can be stopped).
"""

from __future__ import annotations

from typing import Any

from hptune._checks import Int, check
from hptune.exceptions import ConfigError
from hptune.execution.base import Executor
from hptune.execution.inline import InlineExecutor
from hptune.execution.process import ProcessExecutor
from hptune.execution.ray_executor import RayExecutor

EXECUTORS = ("inline", "process", "ray")
_RAY_KEYS = {
    "ray_address": "address",
    "address": "address",
    "num_cpus_per_trial": "num_cpus_per_trial",
    "num_gpus_per_trial": "num_gpus_per_trial",
    "max_concurrent": "max_concurrent",
    "init_kwargs": "init_kwargs",
}


def create_executor(
    executor: Executor | str | None,
    n_workers: int,
    executor_options: dict[str, Any] | None,
    trial_timeout_s: float | None,
) -> Executor:
    """The executor an ``optimize`` call runs on (see the module docstring)."""
    check("optimize: n_workers", n_workers, Int(low=1))
    options = dict(executor_options or {})
    if isinstance(executor, Executor):
        if n_workers != 1 or options:
            raise ConfigError(
                "optimize: give n_workers or executor, not both (an Executor object carries "
                "its own settings, executor_options included); or pass executor by name."
            )
        if isinstance(executor, InlineExecutor) and trial_timeout_s is not None:
            executor = "inline"  # refused below, with the reason
        else:
            return executor
    if executor is None:
        # A trial in the driver's own process cannot be stopped at a deadline: a per-trial
        # timeout takes a worker process, even for one worker.
        inline = n_workers == 1 and not options and trial_timeout_s is None
        executor = "inline" if inline else "process"
    if executor not in EXECUTORS:
        raise ConfigError(
            f"optimize: executor must be an hptune Executor or one of {', '.join(EXECUTORS)}, "
            f"got {executor!r}."
        )
    if executor == "inline":
        if trial_timeout_s is not None:
            raise ConfigError(
                "optimize: trial_timeout needs trials in worker processes (a trial in this "
                "process cannot be stopped at a deadline); use executor='process', or leave "
                "executor out."
            )
        if n_workers != 1 or options:
            raise ConfigError(
                f"optimize: the inline executor runs one trial at a time in this process; "
                f"got n_workers={n_workers} and options {sorted(options)}. Use "
                "executor='process' for parallel trials."
            )
        return InlineExecutor()
    if executor == "process":
        return ProcessExecutor(n_workers, trial_timeout_s=trial_timeout_s, **options)
    return _ray_executor(n_workers, options)


def _ray_executor(n_workers: int, options: dict[str, Any]) -> Executor:
    unknown = sorted(set(options) - set(_RAY_KEYS))
    if unknown:
        raise ConfigError(
            f"optimize: unknown executor_options {unknown} for executor='ray'; valid: "
            f"{', '.join(sorted(_RAY_KEYS))}."
        )
    kwargs = {_RAY_KEYS[k]: v for k, v in options.items()}
    if n_workers > 1:
        kwargs.setdefault("max_concurrent", n_workers)
    return RayExecutor(**kwargs)  # imports ray when it starts
