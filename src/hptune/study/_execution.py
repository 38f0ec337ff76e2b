"""Choosing the executor of an ``optimize`` call, and stopping cleanly on SIGTERM.

``executor`` may be an :class:`~hptune.execution.Executor` or a name: ``"inline"`` (trials
in the driver), ``"process"`` (persistent spawn workers, :class:`ProcessExecutor`) or
``"ray"`` (:class:`RayExecutor`; ``executor_options`` such as ``ray_address``,
``num_cpus_per_trial``, ``num_gpus_per_trial``). ``None`` picks inline for one worker and
the process pool for more.

SIGTERM (what ``kill``, systemd, Kubernetes and batch schedulers send before SIGKILL) is
turned into ``KeyboardInterrupt`` while a driver runs, so it stops exactly as on Ctrl-C:
running trials are recorded FAILED ``"interrupted"`` (not counted by budgets, so a resume
runs them again) and completed ones are kept. Python only lets the main thread install a
signal handler; elsewhere SIGTERM keeps its previous meaning.
"""

from __future__ import annotations

import contextlib
import importlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

from hptune.exceptions import ConfigError, HptuneError
from hptune.execution import Executor, InlineExecutor

EXECUTORS = ("inline", "process", "ray")
_RAY_KEYS = {
    "ray_address": "address",
    "address": "address",
    "num_cpus_per_trial": "num_cpus_per_trial",
    "num_gpus_per_trial": "num_gpus_per_trial",
    "max_concurrent": "max_concurrent",
    "init_kwargs": "init_kwargs",
}


def make_executor(
    executor: Executor | str | None,
    n_workers: int,
    executor_options: dict[str, Any] | None,
    trial_timeout_s: float | None,
) -> Executor:
    """The executor an ``optimize`` call runs on (see the module docstring)."""
    if isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1:
        raise ConfigError(f"optimize: n_workers must be an int >= 1, got {n_workers!r}.")
    options = dict(executor_options or {})
    if isinstance(executor, Executor):
        if n_workers != 1 or options:
            raise ConfigError(
                "optimize: give n_workers or executor, not both (an Executor object carries "
                "its own settings, executor_options included); or pass executor by name."
            )
        return executor
    if executor is None:
        executor = "inline" if n_workers == 1 and not options else "process"
    if executor not in EXECUTORS:
        raise ConfigError(
            f"optimize: executor must be an hptune Executor or one of {', '.join(EXECUTORS)}, "
            f"got {executor!r}."
        )
    if executor == "inline":
        if n_workers != 1 or options:
            raise ConfigError(
                f"optimize: the inline executor runs one trial at a time in this process; "
                f"got n_workers={n_workers} and options {sorted(options)}. Use "
                "executor='process' for parallel trials."
            )
        return InlineExecutor()
    if executor == "process":
        process = _import("hptune.execution.process", executor)
        return process.ProcessExecutor(n_workers, trial_timeout_s=trial_timeout_s, **options)
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
    ray_module = _import("hptune.execution.ray_executor", "ray")
    return ray_module.RayExecutor(**kwargs)


def _import(module: str, name: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise HptuneError(
            f"optimize(executor={name!r}) needs {module}, which failed to import ({exc}); "
            "install what it names, or use executor='inline'."
        ) from exc


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While active (main thread only), SIGTERM raises ``KeyboardInterrupt``."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
