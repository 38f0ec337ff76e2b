"""The executor interface: how the driver hands trials to whatever runs them.

The driver (``hptune.study``) is the only writer to storage. It asks the sampler for a
config, wraps it in a :class:`TrialJob` and calls :meth:`Executor.submit`. It then calls
:meth:`Executor.wait`, which blocks until at least one trial has finished, relaying every
intermediate report to the driver's ``on_report`` callback (which consults the pruner and
returns ``True`` to prune) while it waits.
"""

from __future__ import annotations

import abc
import dataclasses
import enum
import math
from collections.abc import Callable
from typing import Any

#: ``on_report(trial_number, step, value) -> should_prune``. Called by the executor in the
#: driver process, once per ``trial.report`` of a running trial, in the order they happen.
OnReport = Callable[[int, int, float], bool]

#: An objective: a callable ``(config, trial) -> float`` or an importable "module:function".
ObjectiveRef = Callable[..., float] | str


@dataclasses.dataclass(frozen=True)
class TrialJob:
    """One trial for an executor to run.

    ``threads`` is the number of torch threads to run it with; None keeps the number the
    executor's process was set up with (a rerun passes the number the trial recorded).
    """

    number: int
    config: dict[str, Any]
    seed: int
    objective: ObjectiveRef
    timeout_s: float | None = None
    threads: int | None = None


class OutcomeState(str, enum.Enum):
    COMPLETE = "complete"
    PRUNED = "pruned"
    FAILED = "failed"


class FailureKind(str, enum.Enum):
    """Why a trial failed, as data: every decision about a failed trial (does it use up the
    budget, is it retried, does the sampler learn from it, is it a divergence in the report)
    reads its kind, never its message, which is for people and may be reworded.

    The executors give the first six; the study adds ``STALE`` (its driver stopped: no
    heartbeat) and ``DUPLICATE`` (a grid point another trial already holds).
    """

    ERROR = "error"  #: the objective raised, or returned something that is not a number
    DIVERGED = "diverged"  #: TrialDiverged, or a NaN/inf value (judged by the driver)
    OUT_OF_MEMORY = "out_of_memory"  #: MemoryError, or a GPU out-of-memory error
    TIMEOUT = "timeout"  #: stopped at its per-trial timeout
    WORKER_DIED = "worker_died"  #: its worker process or Ray worker died under it
    INTERRUPTED = "interrupted"  #: Ctrl-C, SIGTERM, or the executor shut down under it
    STALE = "stale"  #: its driver stopped without telling (found by another driver)
    DUPLICATE = "duplicate"  #: a grid point that another trial holds


@dataclasses.dataclass(frozen=True)
class TrialOutcome:
    """What came of a :class:`TrialJob`.

    ``value`` is the objective's return for COMPLETE (possibly NaN/inf: the driver decides
    what a non-finite value means). A FAILED outcome has a ``kind`` (what happened, for the
    study's decisions), a one-line ``reason`` (for people: ``"ValueError: bad input"``,
    ``"worker killed by signal 9 (SIGKILL)"``, ``"timed out after 30 s"``) and the full
    ``traceback`` where one exists. ``attrs`` holds what the objective recorded with
    ``trial.set_attr``; ``runtime`` what its environment was set to (threads, seed of the
    global generators; see ``execution/_environment.py``), None when it never started.
    """

    number: int
    state: OutcomeState
    value: float | None = None
    reason: str | None = None
    traceback: str | None = None
    kind: FailureKind | None = None
    duration_s: float = 0.0
    last_step: int | None = None
    worker: str | None = None
    attrs: dict[str, Any] = dataclasses.field(default_factory=dict)
    runtime: dict[str, Any] | None = None

    def settled(self) -> TrialOutcome:
        """This outcome as a study records it: a COMPLETE value that is not a finite number
        (NaN, inf) is a ``DIVERGED`` failure; a FAILED outcome without a kind is an
        ``ERROR``. The driver records this, and a re-run compares against it."""
        if self.state is OutcomeState.COMPLETE:
            try:
                finite = math.isfinite(float(self.value))  # type: ignore[arg-type]
            except (TypeError, ValueError):
                finite = False
            if finite:
                return self
            return dataclasses.replace(
                self,
                state=OutcomeState.FAILED,
                kind=FailureKind.DIVERGED,
                reason=f"objective returned {self.value}",
            )
        if self.state is OutcomeState.FAILED and self.kind is None:
            return dataclasses.replace(self, kind=FailureKind.ERROR)
        return self


class Executor(abc.ABC):
    """Runs trials. Subclasses: inline (in the driver), process pool, Ray.

    Lifecycle: ``start(on_report)`` once, then any number of ``submit``/``wait`` rounds,
    then ``shutdown()`` (also on error or Ctrl-C; it must leave no trial running).
    """

    @property
    @abc.abstractmethod
    def capacity(self) -> int:
        """How many trials may run at once (the driver submits at most this many)."""

    def start(self, on_report: OnReport) -> None:  # noqa: B027 - a do-nothing hook
        """Called once before the first submit. Start workers here."""
        self._on_report = on_report

    @abc.abstractmethod
    def submit(self, job: TrialJob) -> None:
        """Start ``job`` (or queue it, inline). Never blocks for the trial's duration
        except in the inline executor, which runs trials during :meth:`wait`."""

    @abc.abstractmethod
    def wait(self, timeout_s: float | None = None) -> list[TrialOutcome]:
        """Block until at least one submitted trial has finished or ``timeout_s`` passed;
        return the outcomes that finished (possibly empty on timeout)."""

    @property
    @abc.abstractmethod
    def n_running(self) -> int:
        """Trials submitted and not yet returned by :meth:`wait`."""

    def shutdown(self) -> list[TrialOutcome]:
        """Stop everything. Returns FAILED outcomes (kind ``INTERRUPTED``) for trials that
        were still running, so the driver can record them. Idempotent."""
        return []

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
