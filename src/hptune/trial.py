"""The live trial handed to an objective, and the signal that stops it.

This module is deliberately tiny and free of torch/optuna imports: it is what a worker
process (local or Ray) needs to run an objective, whatever executor carries the reports.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from typing import Any

from hptune._checks import Int, check
from hptune.exceptions import HptuneError

#: ``reporter(step, value) -> should_prune``. Supplied by the executor: inline, it calls the
#: driver directly; in a worker process, it sends the report to the driver and waits for
#: the answer.
Reporter = Callable[[int, float], bool]


class TrialPruned(HptuneError):
    """Raised by :meth:`Trial.report` when the pruner stops the trial.

    Let it propagate out of the objective: the trial is then recorded as PRUNED (not
    failed) with its last reported value.
    """


class TrialDiverged(HptuneError):
    """Raise it from an objective when training diverged (loss NaN or exploding).

    The trial is recorded as FAILED with the message as its reason, and the sampler is told
    that the region is bad (as for an objective that returns NaN), so it stops proposing it.

    Example:
        >>> raise TrialDiverged("loss exploded at epoch 3")  # doctest: +SKIP
    """


class Trial:
    """The handle an objective receives: ``objective(config, trial) -> float``.

    Args:
        number: The trial's number in its study (0-based, unique within the study).
        config: The plain nested dict of hyperparameters drawn for this trial.
        seed: The seed to use for everything random in this trial; derived from the study
            seed and the trial number, so re-running a trial reproduces it.
        reporter: Delivers ``(step, value)`` to the driver and returns whether to prune.

    Example:
        >>> def objective(config, trial):
        ...     for epoch in range(3):
        ...         trial.report(epoch, 1.0 / (epoch + 1))
        ...     return 0.25
    """

    def __init__(
        self,
        number: int,
        config: dict[str, Any],
        seed: int,
        reporter: Reporter | None = None,
    ) -> None:
        self.number = number
        self.config = config
        self.seed = seed
        self._reporter = reporter
        self.last_step: int | None = None
        self.attrs: dict[str, Any] = {}

    def set_attr(self, key: str, value: Any) -> None:
        """Record a JSON-able fact about this trial (e.g. ``test_accuracy``); it is stored
        with the trial when the trial ends, whatever its state."""
        if not isinstance(key, str) or not key:
            raise HptuneError(f"trial.set_attr: key must be a non-empty string, got {key!r}.")
        self.attrs[key] = value

    def report(self, step: int, value: float) -> None:
        """Record an intermediate ``value`` at ``step`` (usually an epoch, 0-based or 1-based
        as the task prefers, but increasing); raise :class:`TrialPruned` when the pruner
        says stop. Called at evaluation time, not per batch.
        """
        check("trial.report: step", step, Int(low=0), fix="an epoch or step number")
        value = float(value)
        self.last_step = step
        if self._reporter is None:
            return
        if self._reporter(step, value):
            raise TrialPruned(f"trial {self.number} pruned at step {step} (value {value:g})")

    def __repr__(self) -> str:
        return f"Trial(number={self.number}, seed={self.seed}, config={self.config!r})"


#: What out-of-memory RuntimeErrors of CUDA, cuBLAS and cuDNN say (torch raises some of
#: them as plain RuntimeErrors rather than ``torch.OutOfMemoryError``).
_OOM_MARKERS = ("out of memory", "CUBLAS_STATUS_ALLOC_FAILED", "CUDNN_STATUS_ALLOC_FAILED")


def is_oom_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a GPU out-of-memory error: torch's ``OutOfMemoryError``, or a
    RuntimeError that says so. (A CPU ``MemoryError`` is not: nothing fits it smaller.)

    torch is looked up, not imported: an exception of torch's means torch is loaded.
    """
    torch = sys.modules.get("torch")
    oom_type = getattr(getattr(torch, "cuda", None), "OutOfMemoryError", None)
    if oom_type is not None and isinstance(exc, oom_type):
        return True
    return isinstance(exc, RuntimeError) and any(m in str(exc) for m in _OOM_MARKERS)


def is_finite(value: float) -> bool:
    """True for a real, finite number (the only kind of objective value a study accepts)."""
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False
