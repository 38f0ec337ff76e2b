"""Stopping cleanly on SIGTERM, and holding signals back while storage is half written.

SIGTERM (what ``kill``, systemd, Kubernetes and batch schedulers send before SIGKILL) is
turned into ``KeyboardInterrupt`` while a driver runs, so it stops exactly as on Ctrl-C:
running trials are recorded FAILED ``"interrupted"`` (not counted by budgets, so a resume
runs them again) and completed ones are kept. Python only lets the main thread install a
signal handler; elsewhere SIGTERM keeps its previous meaning.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any


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
