"""What the report reads from a study, gathered once: trials by state, the space's
dimensions, the direction, and the formatting every section shares."""

from __future__ import annotations

import dataclasses
import importlib
import math
import re
from typing import Any

from hptune.exceptions import HptuneError
from hptune.execution import FailureKind
from hptune.space import Choice, Conditional, Dimension, FloatDimension, IntDimension
from hptune.study import Confirmation, Study, TrialRecord, _records
from hptune.study._confirm import summarize
from hptune.study._warm import STAGE as WARM_START

_NUMERIC = (FloatDimension, IntDimension)
#: Parameter names taken for "the learning rate" (the last dotted part is matched).
_LR_NAME = re.compile(r"^(lr|learning_rate|base_lr|max_lr|eta)$", re.IGNORECASE)
MATPLOTLIB_MISSING = "hptune report needs matplotlib: pip install 'hptune[report]'"
#: Study user attributes the report reads: the spec a study was run from (written by the
#: runner) and why the last run stopped (written by the driver).
SPEC_ATTR, STOP_ATTR = _records.SPEC, _records.STOP


class Empty(Exception):
    """A section has nothing to show; the message says why (shown in its place)."""


@dataclasses.dataclass(frozen=True)
class ReportData:
    """The facts of a study the report sections read, in one snapshot.

    Args:
        name: The study name.
        direction: ``"minimize"`` or ``"maximize"``.
        trials: Every trial, in number order.
        dimensions: ``(parameter name, dimension)`` of the space, in space order.
        diverged: Numbers of the FAILED trials of kind ``DIVERGED`` (NaN, inf,
            :class:`~hptune.trial.TrialDiverged`).
        notes: What the strategy noted about the study.
        source: The study itself (for Optuna's importance evaluators).
        step_unit: What a step of the learning curves is: ``"epoch"`` for a study run
            from a spec whose task the recipe trains, else ``"step"``.
        spec: The spec the study was last run from (a JSON-able dict), None for a study
            made in Python.
        stop: Why the last ``optimize`` stopped: ``{"reason": ..., "at": ISO time,
            "trials": counted trials then}``; None when not recorded.
        warm_start: Where a warm start copied the study's first trials from
            (``Study.warm_start``); the copies are not in ``trials``: the report is about
            the search this study ran. None for a study that started cold.
        confirmation: The configs re-trained with fresh seeds (``Study.confirmation``);
            None without a confirmation. When it chose a config, that is :attr:`best`.
    """

    name: str
    direction: str
    trials: tuple[TrialRecord, ...]
    dimensions: tuple[tuple[str, Dimension], ...]
    diverged: frozenset[int]
    notes: tuple[str, ...] = ()
    source: Study | None = dataclasses.field(default=None, compare=False, repr=False)
    step_unit: str = "step"
    spec: dict[str, Any] | None = dataclasses.field(default=None, compare=False, repr=False)
    stop: dict[str, Any] | None = None
    warm_start: dict[str, Any] | None = None
    confirmation: Confirmation | None = None

    @property
    def maximize(self) -> bool:
        return self.direction == "maximize"

    @property
    def complete(self) -> list[TrialRecord]:
        return [t for t in self.trials if t.state == "COMPLETE" and _finite(t.value)]

    def ranked(self) -> list[TrialRecord]:
        """COMPLETE trials, best first (ties: lower trial number first)."""
        sign = -1.0 if self.maximize else 1.0
        return sorted(self.complete, key=lambda t: (sign * t.value, t.number))

    @property
    def best(self) -> TrialRecord | None:
        """The best trial: the config a confirmation chose, else the best reading."""
        chosen = self.confirmation.best if self.confirmation is not None else None
        if chosen is not None:
            return next(t for t in self.trials if t.number == chosen.trial)
        ranked = self.ranked()
        return ranked[0] if ranked else None

    def numeric(self) -> list[tuple[str, FloatDimension | IntDimension]]:
        """Numeric dimensions with a range (``low < high``): the ones a boundary exists for."""
        return [(n, d) for n, d in self.dimensions if isinstance(d, _NUMERIC) and d.low < d.high]

    def lr_dimension(self) -> tuple[str, FloatDimension | IntDimension] | None:
        """The learning rate: a numeric dimension named like one (``lr``, ``optimizer.lr``),
        log-scaled ones first; None when the space has none."""
        named = [(n, d) for n, d in self.numeric() if _LR_NAME.match(n.rsplit(".", 1)[-1])]
        named.sort(key=lambda nd: not nd[1].log)
        return named[0] if named else None


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def gather(study: Study) -> ReportData:
    """Read ``study`` once into a :class:`ReportData`."""
    if not isinstance(study, Study):
        raise HptuneError(
            f"the report needs an hptune Study, got {type(study).__name__} {study!r}; "
            "open one with hptune.load_study(name, storage)."
        )
    trials = tuple(t for t in study.trials if t.stage != WARM_START)
    diverged = frozenset(t.number for t in trials if t.failure_kind is FailureKind.DIVERGED)
    dims = tuple(
        (n, d)
        for n, d in study.space.dimensions()
        if isinstance(d, (*_NUMERIC, Choice, Conditional))
    )
    attrs = study.optuna_study.user_attrs
    unit = attrs.get(_records.STEP_UNIT)
    spec, stop = attrs.get(SPEC_ATTR), attrs.get(STOP_ATTR)
    return ReportData(
        study.name,
        study.direction,
        trials,
        dims,
        diverged,
        tuple(study.notes),
        study,
        unit if unit in ("epoch", "step") else "step",
        spec if isinstance(spec, dict) else None,
        stop if isinstance(stop, dict) else None,
        study.warm_start,
        summarize(trials, study.direction),
    )


def is_categorical(dim: Dimension) -> bool:
    return isinstance(dim, (Choice, Conditional))


def choices(dim: Choice | Conditional) -> list[Any]:
    """The values of a ``choice`` as a plot's axis shows them: numbers low to high (a
    grid's ``lr: [0.1, 0.01, 0.001]`` read backwards on an axis), others as given; or the
    branch names of a conditional one."""
    if not isinstance(dim, Choice):
        return list(dim.names)
    values = list(dim.values)
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    return sorted(values) if numbers else values


def position(dim: FloatDimension | IntDimension, x: float) -> float:
    """Where ``x`` sits in ``[low, high]`` as a fraction, measured in the dimension's own
    scale (log for log dimensions), so "5% from the bound" means the same on every axis."""
    if dim.log:
        return (math.log(x) - math.log(dim.low)) / (math.log(dim.high) - math.log(dim.low))
    return (x - dim.low) / (dim.high - dim.low)


def fmt(value: Any) -> str:
    """A number for people: 4 significant digits; other values as ``str``."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def fmt_seconds(seconds: float) -> str:
    """``"42.1 s"``, ``"3 min 20 s"``, ``"2 h 05 min"``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def require_matplotlib() -> Any:
    """Import matplotlib on first use (never at ``import hptune``)."""
    try:
        return importlib.import_module("matplotlib")
    except ImportError:
        raise HptuneError(MATPLOTLIB_MISSING) from None
