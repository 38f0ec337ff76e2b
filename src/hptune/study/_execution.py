"""Choosing the executor of an ``optimize`` call, and stopping cleanly on SIGTERM.

``executor`` may be an :class:`~hptune.execution.Executor` or a name: ``"inline"`` (trials
in the driver), ``"process"`` (persistent spawn workers, :class:`ProcessExecutor`) or
``"ray"`` (:class:`RayExecutor`; ``executor_options`` such as ``ray_address``,
``num_cpus_per_trial``, ``num_gpus_per_trial``). ``None`` picks inline for one worker and
the process pool for more, or for a ``trial_timeout`` (only a process can be stopped).

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


def signals_deferred() -> contextlib.AbstractContextManager[None]:
    """Hold SIGINT and SIGTERM back (main thread) for the duration of a storage transaction
    the driver must not leave half done: a trial created but not yet tracked as running, or
    untracked but not yet told. A signal that arrives meanwhile is raised again, with the
    handler that was in force, the moment the block ends: Ctrl-C is delayed by one storage
    write, never lost.

    Python-level handlers, not ``pthread_sigmask``: Python runs handlers in the main thread
    whichever OS thread received the signal, so masking the main thread alone would not
    hold back a signal delivered to one of the driver's other threads.
    """
    if threading.current_thread() is not threading.main_thread():
        return contextlib.nullcontext()
    return _deferred((signal.SIGINT, signal.SIGTERM))


@contextlib.contextmanager
def _deferred(signals: tuple[signal.Signals, ...]) -> Iterator[None]:
    pending: list[int] = []

    def hold(signum: int, frame: Any) -> None:
        pending.append(signum)

    previous = {s: signal.signal(s, hold) for s in signals}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if pending:
            signal.raise_signal(pending[0])


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
