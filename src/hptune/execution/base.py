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
from collections.abc import Callable
from typing import Any

#: ``on_report(trial_number, step, value) -> should_prune``. Called by the executor in the
#: driver process, once per ``trial.report`` of a running trial, in the order they happen.
OnReport = Callable[[int, int, float], bool]

#: An objective: a callable ``(config, trial) -> float`` or an importable "module:function".
ObjectiveRef = Callable[..., float] | str


@dataclasses.dataclass(frozen=True)
class TrialJob:
    """One trial for an executor to run."""

    number: int
    config: dict[str, Any]
    seed: int
    objective: ObjectiveRef
    timeout_s: float | None = None


class OutcomeState(str, enum.Enum):
    COMPLETE = "complete"
    PRUNED = "pruned"
    FAILED = "failed"


@dataclasses.dataclass(frozen=True)
class TrialOutcome:
    """What came of a :class:`TrialJob`.

    ``value`` is the objective's return for COMPLETE (possibly NaN/inf: the driver decides
    what a non-finite value means); ``reason`` is a one-line explanation for FAILED
    (``"ValueError: bad input"``, ``"worker killed by signal 9"``, ``"timed out after 30 s"``)
    and ``traceback`` the full text where one exists. ``attrs`` holds what the objective
    recorded with ``trial.set_attr``. ``diverged`` marks a FAILED outcome whose objective
    raised :class:`hptune.trial.TrialDiverged` (or a subclass): the sampler must learn that
    region is bad.
    """

    number: int
    state: OutcomeState
    value: float | None = None
    reason: str | None = None
    traceback: str | None = None
    diverged: bool = False
    duration_s: float = 0.0
    last_step: int | None = None
    worker: str | None = None
    attrs: dict[str, Any] = dataclasses.field(default_factory=dict)


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
        """Stop everything. Returns FAILED outcomes (reason ``"interrupted"``) for trials
        that were still running, so the driver can record them. Idempotent."""
        return []

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
