"""The numbers of the report: trials per state, compute spent and saved, the leaderboard,
parameter importances by Optuna's default evaluator (the one optuna-dashboard uses), and
why the last run stopped."""

from __future__ import annotations

import dataclasses
import datetime
import itertools
import math
import warnings
from collections import Counter

import optuna

from hptune.report._data import ReportData, fmt_seconds
from hptune.study import TrialRecord

STATES = ("COMPLETE", "PRUNED", "FAILED", "RUNNING", "WAITING")
#: Fewer COMPLETE trials than this: no importances at all (they would be mostly noise).
MIN_IMPORTANCE_TRIALS = 5
#: The importance evaluator, as the report names it.
METHOD = "PED-ANOVA"
#: PED-ANOVA's ``target_quantile``: Optuna's default, which optuna-dashboard uses; named
#: here so the report can say what it means.
TOP_QUANTILE = 0.1
#: Optuna's documentation of ``PedAnovaImportanceEvaluator``: "it is preferable to include
#: at least 5 trials above target_quantile".
MIN_TOP_TRIALS = 5
#: Fewer COMPLETE trials per assessed parameter than this: the importances get a caveat.
MIN_TRIALS_PER_PARAMETER = 5
HINT = "Read the ranking as a hint, not a measurement."


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
    """Parameter importances (summing to 1), what they rest on, and what to mind.

    Args:
        values: Parameter name -> importance, most important first; empty when none
            could be computed.
        method: The evaluator's name.
        n_trials: The COMPLETE trials they rest on.
        n_pruned: PRUNED trials left out (see :func:`importance`).
        note: Why nothing was computed, or which parameters were left out.
        caveats: Why to read the numbers with care: too few trials for the method, and
            what Optuna warned about while computing them.
    """

    values: dict[str, float]
    method: str
    n_trials: int = 0
    n_pruned: int = 0
    note: str | None = None
    caveats: tuple[str, ...] = ()


def importance(data: ReportData) -> Importance:
    """Importances by PED-ANOVA (Watanabe et al., "PED-ANOVA: Efficiently Quantifying
    Hyperparameter Importance in Arbitrary Subspaces", IJCAI 2023, arXiv 2304.10255), with
    conditional parameters as Optuna 5 assesses them (condPED-ANOVA, arXiv 2601.20800).

    Why this one: it is what ``optuna.importance.get_param_importances`` uses by default
    since Optuna 5 (optuna PR 6748) and what optuna-dashboard computes (its
    ``_importance.py``: ``PedAnovaImportanceEvaluator()`` with its defaults), so the report
    and the dashboard show the same numbers for the same study. fANOVA (Hutter et al.,
    ICML 2014), which this report used before, disagreed with the dashboard and needs
    scikit-learn. PED-ANOVA compares where the best :data:`TOP_QUANTILE` of the trials sit
    with where all of them do, per parameter.

    Only COMPLETE trials enter, as in Optuna and the dashboard: a PRUNED trial's last value
    was read after fewer epochs and is not comparable with a finished one's (feeding it in
    would rank parameters by how fast a trial starts, not where it ends). The result says
    how many trials it rests on, and warns when they are few for the method."""
    assert data.source is not None, "importance needs the study (gather() sets it)"
    complete = data.complete
    n, n_pruned = len(complete), sum(t.state == "PRUNED" for t in data.trials)
    if n < MIN_IMPORTANCE_TRIALS:
        return Importance(
            {},
            METHOD,
            n,
            n_pruned,
            f"needs at least {MIN_IMPORTANCE_TRIALS} complete "
            f"trials to mean anything; the study has {n}.",
        )
    if len({t.value for t in complete}) == 1:
        return Importance(
            {}, METHOD, n, n_pruned, "every complete trial has the same value: nothing to explain."
        )
    evaluator = optuna.importance.PedAnovaImportanceEvaluator(target_quantile=TOP_QUANTILE)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            values = optuna.importance.get_param_importances(
                data.source.optuna_study, evaluator=evaluator
            )
        except (ValueError, RuntimeError) as exc:
            return Importance({}, METHOD, n, n_pruned, f"{METHOD} could not run: {exc}")
    left_out = [name for name, _ in data.dimensions if name not in values]
    note = f"Left out, as no complete trial has them: {', '.join(left_out)}." if left_out else None
    said = dict.fromkeys(f"Optuna warned: {w.message}" for w in caught)  # once each, in order
    caveats = [*few_trials(n, len(values)), *said]
    if caveats:
        caveats.append(HINT)
    return Importance(dict(values), METHOD, n, n_pruned, note, tuple(caveats))


def few_trials(n: int, n_params: int) -> list[str]:
    """Why ``n`` complete trials are few for importances of ``n_params`` parameters."""
    found = []
    top = math.ceil(TOP_QUANTILE * n)
    if top < MIN_TOP_TRIALS:
        # The smallest study whose best group is large enough, counted as Optuna counts it.
        enough = next(
            k for k in itertools.count(n) if math.ceil(TOP_QUANTILE * k) >= MIN_TOP_TRIALS
        )
        found.append(
            f"Few trials: {METHOD} compares the best {TOP_QUANTILE:.0%} of the complete "
            f"trials ({top} of {n}) with all of them; Optuna's documentation advises at "
            f"least {MIN_TOP_TRIALS} in that best group ({enough} or more complete trials)."
        )
    if n < MIN_TRIALS_PER_PARAMETER * n_params:
        found.append(
            f"Fewer than {MIN_TRIALS_PER_PARAMETER} complete trials per parameter "
            f"({n} for {n_params})."
        )
    return found


def stop_sentence(data: ReportData) -> str | None:
    """Why the study's last run stopped, in words; None when the study did not record it.

    The driver records ``{"reason", "at", "trials"}`` (:data:`~hptune.report._data.STOP_ATTR`)
    at the end of every ``optimize``; the spec, when there is one, gives the limits.

    Example: ``"Stopped at 2026-11-30 14:02 UTC: its 4-minute timeout passed with 62 of 100
    trials run."``
    """
    stop = data.stop
    if stop is None:
        return None
    budget = (data.spec or {}).get("budget") or {}
    total, timeout = budget.get("trials"), budget.get("timeout_s")
    n = stop.get("trials")
    run = "" if n is None else f"{n} of {total} trials run" if total else f"{n} trials run"
    with_run, in_brackets = (f" with {run}", f" ({run})") if run else ("", "")
    reason = stop.get("reason")
    limit = f"its budget of {total} trials" if total else "its trial budget"
    words = {
        "timeout": f"its {duration_words(timeout)} timeout passed{with_run}"
        if timeout
        else f"its timeout passed{with_run}",
        "budget": f"{limit} was used up{in_brackets}",
        "budget_spent": f"{limit} was already spent when it started{in_brackets}",
        "exhausted": f"nothing was left to run (a grid run to its end, or a confirmation "
        f"that re-trained every config there was){with_run}",
        "interrupted": f"it was interrupted (Ctrl-C or SIGTERM){with_run}; the trials then "
        "running are recorded as failed (interrupted) and a resume runs them again",
        "trials": f"it ran the number of trials it was asked for{with_run}",
        "storage_failed": f"its storage failed (a full disk or a corrupt database){with_run}; "
        "finished trials are kept and a resume goes on once the storage is repaired",
    }.get(reason, f"for the reason {reason!r}{with_run}")
    return f"Stopped{_at(stop.get('at'))}: {words}."


def warm_start_sentence(data: ReportData) -> str | None:
    """Where the study's first trials came from, when a warm start copied them."""
    warm = data.warm_start
    if not warm:
        return None
    return (
        f"Warm start: the study began with {warm.get('trials')} trials copied from study "
        f"{warm.get('study')!r}; they taught its sampler and are left out of this report."
    )


def duration_words(seconds: float) -> str:
    """``240`` -> ``"4-minute"``, ``7200`` -> ``"2-hour"``, ``90`` -> ``"1 min 30 s"``."""
    if seconds < 60:
        return f"{seconds:g}-second"
    for size, unit in ((3600, "hour"), (60, "minute")):
        if seconds % size == 0:
            return f"{int(seconds // size)}-{unit}"
    return fmt_seconds(seconds)


def _at(stamp: object) -> str:
    try:
        when = datetime.datetime.fromisoformat(str(stamp))
    except ValueError:
        return f" at {stamp}" if stamp else ""
    if when.tzinfo is not None:
        when = when.astimezone(datetime.timezone.utc)
    return f" at {when:%Y-%m-%d %H:%M} UTC"
