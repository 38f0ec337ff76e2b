"""The numbers of the report: trials per state, compute spent and saved, the leaderboard,
and parameter importances from Optuna's evaluators."""

from __future__ import annotations

import dataclasses
import importlib
import math
import warnings
from collections import Counter

import optuna

from hptune.report._data import ReportData
from hptune.study import TrialRecord

STATES = ("COMPLETE", "PRUNED", "FAILED", "RUNNING", "WAITING")
#: Fewer COMPLETE trials than this give importances that are mostly noise.
MIN_IMPORTANCE_TRIALS = 5


@dataclasses.dataclass(frozen=True)
class Compute:
    """What the study cost and what pruning saved.

    Args:
        n_steps: Intermediate values reported, over all trials (one per epoch, usually).
        seconds: The sum of the finished trials' durations.
        full_budget: The last step reached by COMPLETE trials (the most of them), taken as
            the step a trial runs to when not pruned; None when no COMPLETE trial reported.
        n_steps_saved: Steps pruned trials did not run: ``full_budget - last step`` each.
    """

    n_steps: int
    seconds: float
    full_budget: int | None
    n_steps_saved: int | None

    @property
    def saved_fraction(self) -> float | None:
        """Saved steps as a share of what the study would have cost without pruning."""
        if not self.n_steps_saved:
            return None if self.n_steps_saved is None else 0.0
        return self.n_steps_saved / (self.n_steps + self.n_steps_saved)


def state_counts(data: ReportData) -> dict[str, int]:
    """Trials per state, in the order of :data:`STATES`, the three final states always."""
    counts = Counter(t.state for t in data.trials)
    return {s: counts[s] for s in STATES if counts[s] or s in STATES[:3]}


def compute(data: ReportData) -> Compute:
    """Steps and seconds spent; steps saved by pruning (see :class:`Compute`)."""
    n_steps = sum(len(t.intermediate_values) for t in data.trials)
    seconds = sum(t.duration for t in data.trials if t.duration is not None)
    ends = [max(t.intermediate_values) for t in data.complete if t.intermediate_values]
    if not ends:
        return Compute(n_steps, seconds, None, None)
    budget = max(ends)
    saved = sum(
        max(0, budget - max(t.intermediate_values))
        for t in data.trials
        if t.state == "PRUNED" and t.intermediate_values
    )
    return Compute(n_steps, seconds, budget, saved)


def leaderboard(data: ReportData, top_n: int) -> list[TrialRecord]:
    """The ``top_n`` best COMPLETE trials; PRUNED ones fill the rest, ranked by their last
    value (not comparable with a finished trial's, hence after them)."""
    rows = data.ranked()[:top_n]
    if len(rows) < top_n:
        sign = -1.0 if data.maximize else 1.0
        pruned = [t for t in data.trials if t.state == "PRUNED" and t.value is not None]
        pruned.sort(
            key=lambda t: (sign * t.value if math.isfinite(t.value) else math.inf, t.number)
        )
        rows += pruned[: top_n - len(rows)]
    return rows


@dataclasses.dataclass(frozen=True)
class Importance:
    """Parameter importances (summing to 1), the evaluator used, and what was left out.

    Args:
        values: Parameter name -> importance, most important first; empty when none
            could be computed.
        method: The evaluator's name.
        note: Why nothing was computed, or which parameters were left out.
    """

    values: dict[str, float]
    method: str
    note: str | None = None


def importance(data: ReportData) -> Importance:
    """Importances by fANOVA (Hutter, Hoos & Leyton-Brown, "An Efficient Approach for
    Assessing Hyperparameter Importance", ICML 2014), which needs scikit-learn; without it,
    by PED-ANOVA (Watanabe et al., "PED-ANOVA: Efficiently Quantifying Hyperparameter
    Importance in Arbitrary Subspaces", IJCAI 2023), which needs nothing more.

    Only parameters present in every COMPLETE trial enter (Optuna's evaluators need a
    common search space), so the parameters of conditional branches are left out."""
    assert data.source is not None, "importance needs the study (gather() sets it)"
    evaluator, method = _evaluator()
    n = len(data.complete)
    if n < MIN_IMPORTANCE_TRIALS:
        return Importance(
            {},
            method,
            f"needs at least {MIN_IMPORTANCE_TRIALS} complete "
            f"trials to mean anything; the study has {n}.",
        )
    common = set.intersection(*(set(t.params) for t in data.complete))
    varied = [
        name
        for name, _ in data.dimensions
        if name in common and len({repr(t.params[name]) for t in data.complete}) > 1
    ]
    left_out = [name for name, _ in data.dimensions if name not in varied]
    if not varied:
        return Importance({}, method, "no parameter varies across all complete trials.")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        try:
            values = optuna.importance.get_param_importances(
                data.source.optuna_study, evaluator=evaluator, params=varied
            )
        except (ValueError, RuntimeError) as exc:
            return Importance({}, method, f"{method} could not run: {exc}")
    note = (
        f"left out (not in every complete trial, or constant): {', '.join(left_out)}."
        if left_out
        else None
    )
    return Importance(dict(values), method, note)


def _evaluator() -> tuple[optuna.importance.BaseImportanceEvaluator, str]:
    try:
        importlib.import_module("sklearn.ensemble")  # what Optuna's fANOVA is built on
    except ImportError:
        return optuna.importance.PedAnovaImportanceEvaluator(), "PED-ANOVA"
    # A fixed seed: the same study gives the same importances in every report.
    return optuna.importance.FanovaImportanceEvaluator(seed=0), "fANOVA"
