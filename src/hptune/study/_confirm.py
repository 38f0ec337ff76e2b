"""Confirming the best configs: the top few re-trained with fresh seeds, chosen by the mean.

A search's best trial is its luckiest validation reading: of many noisy readings the
largest is biased upwards (the "winner's curse" of model selection; Cawley & Talbot, JMLR
11, 2010), and on mnist1d-mlp a change of thread count alone moved a trial from 0.675 to
0.647, more than the whole top-10 spread. With ``confirm`` (:class:`Confirm`;
``Study.optimize(confirm=...)``, the spec's ``confirm:``), the last ``top * seeds`` trials
of the trial budget re-train the ``top`` best distinct configs of the search ``seeds``
times each, with fresh seeds and without pruning, and the study's best trial becomes the
config with the best *mean over its fresh seeds* (the search's own reading, which chose it,
is left out of the mean: it is the biased one).

How it runs (the driver, ``_driver.py``): the search phase stops at ``max_total_trials -
top * seeds`` trials of the search that count; when no search trial runs any more (or the
strategy has nothing left), :func:`plan` picks the configs and enqueues
one trial per missing slot (``hptune.repeat_of = [number, index]``); the driver then pops
only those, never asks the sampler, and never prunes them. The picks are kept in the study
attribute :data:`PICKS`, so an interrupted confirmation resumes with the same configs; they
are made again only when the search has grown since (a resume with a larger budget) or
top or seeds changed; slots of earlier picks that ran stay in the study and its summary.
Several drivers may confirm at once: a slot enqueued twice runs once (``_budget``). A
driver waits for every driver's search trials to end (or be reaped as stale) before it
picks, so the picks are made from the whole search.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Iterable, Sequence
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from hptune._checks import Int, check
from hptune.study import _budget, _records

#: Study user attribute: ``{"trials": [numbers], "top": n, "seeds": n, "after": n}``, the
#: search trials picked for confirmation, as what, and how many search trials counted or
#: ran when they were picked (picked again only when the search has grown since).
PICKS = "hptune.confirm"
#: The stage a confirmation's trials run in (their records say so).
STAGE = "confirm"


@dataclasses.dataclass(frozen=True)
class Confirm:
    """Re-train the ``top`` best distinct configs of the search ``seeds`` times each with
    fresh seeds, from the end of the trial budget; the best config is then the best mean.

    Example:
        >>> Confirm(top=3, seeds=2).n_trials
        6
    """

    top: int = 3
    seeds: int = 2

    def __post_init__(self) -> None:
        check("confirm: top", self.top, Int(low=1))
        check("confirm: seeds", self.seeds, Int(low=1))

    @property
    def n_trials(self) -> int:
        """Trials of the budget the confirmation takes."""
        return self.top * self.seeds


@dataclasses.dataclass(frozen=True)
class ConfirmedConfig:
    """One confirmed config: the search trial that found it and its fresh-seed readings.

    Args:
        trial: The number of the search trial whose config was re-trained.
        search_value: That trial's value (the reading that picked it; not in the mean).
        values: The COMPLETE fresh-seed trials' values, by trial number.
        failed: Fresh-seed trials that failed (diverged, out of memory, an error).
        pending: Fresh-seed slots not (yet) finished.
    """

    trial: int
    search_value: float
    values: dict[int, float]
    failed: int = 0
    pending: int = 0

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values.values()) if self.values else None

    @property
    def std(self) -> float | None:
        """The sample standard deviation of :attr:`values` (None for fewer than two)."""
        return statistics.stdev(self.values.values()) if len(self.values) > 1 else None


@dataclasses.dataclass(frozen=True)
class Confirmation:
    """What a study's confirmation found: its configs, best first, and the noise.

    ``configs`` are ordered: those none of whose fresh seeds failed, all of them finished,
    by mean (the study's direction); then those still pending; then those with a failed
    seed. ``noise`` is the pooled within-config standard deviation of the fresh readings
    (the size below which two configs' differences are seed noise); None without two
    readings of one config.
    """

    configs: tuple[ConfirmedConfig, ...]
    noise: float | None
    n_readings: int

    @property
    def best(self) -> ConfirmedConfig | None:
        """The chosen config: the first in :attr:`configs` with a reading."""
        return next((c for c in self.configs if c.values), None)


def summarize(records: Sequence[_records.TrialRecord], direction: str) -> Confirmation | None:
    """The confirmation a study's trials hold (None when no trial re-trains a config).
    Slots not yet finished count as pending; retries of a slot are the same slot."""
    by_number = {r.number: r for r in records}
    groups: dict[int, list[_records.TrialRecord]] = {}
    for r in records:
        if r.repeat_of is not None and r.repeat_of in by_number:
            groups.setdefault(r.repeat_of, []).append(r)
    if not groups:
        return None
    configs = []
    for number, repeats in groups.items():
        search = by_number[number]
        if search.value is None:
            continue
        values = {r.number: r.value for r in repeats if r.state == "COMPLETE"}
        failed = sum(
            r.state == "FAILED" and r.failure_kind not in _budget.NOT_COUNTED for r in repeats
        )
        pending = sum(r.state in ("RUNNING", "WAITING") for r in repeats)
        configs.append(ConfirmedConfig(number, search.value, values, failed, pending))  # type: ignore[arg-type]
    sign = -1.0 if direction == "maximize" else 1.0

    def rank(c: ConfirmedConfig) -> tuple[int, float, int]:
        standing = 2 if c.failed else (1 if c.pending or not c.values else 0)
        return standing, sign * c.mean if c.mean is not None else math.inf, c.trial

    configs.sort(key=rank)
    readings = [list(c.values.values()) for c in configs]
    return Confirmation(tuple(configs), pooled_std(readings), sum(map(len, readings)))


def pooled_std(groups: Iterable[Sequence[float]]) -> float | None:
    """sqrt(sum of squared deviations from each group's mean / sum(n_i - 1)): one standard
    deviation shared by the groups; None with no group of two or more.

    Example:
        >>> pooled_std([[1.0, 3.0], [5.0, 5.0], [7.0]])
        1.0
    """
    squares, dof = 0.0, 0
    for values in groups:
        if len(values) > 1:
            mean = statistics.fmean(values)
            squares += sum((v - mean) ** 2 for v in values)
            dof += len(values) - 1
    return math.sqrt(squares / dof) if dof else None


def is_search(trial: FrozenTrial) -> bool:
    """Whether ``trial`` is the search's (not a fresh-seed re-training of a config)."""
    return _records.repeated_trial(trial) is None


def is_repeat(trial: FrozenTrial) -> bool:
    return not is_search(trial)


def search_runs(ostudy: optuna.Study) -> bool:
    """Whether a search trial runs anywhere (a confirmation waits for it: it may be best)."""
    running = ostudy.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    return any(is_search(t) for t in running)


def pick(trials: Sequence[FrozenTrial], direction: str, top: int) -> list[int]:
    """The numbers of the ``top`` best COMPLETE search trials of distinct configs (a config
    found twice is picked once, by its best reading), best first."""
    best: dict[Any, FrozenTrial] = {}
    maximize = direction == "maximize"
    for t in trials:
        if t.state != TrialState.COMPLETE or not is_search(t) or not _budget.counts(t):
            continue
        key = _records.canonical_json(dict(t.params))
        held = best.get(key)
        if held is None or (t.value > held.value if maximize else t.value < held.value):  # type: ignore[operator]
            best[key] = t
    ranked = sorted(best.values(), key=lambda t: (-t.value if maximize else t.value, t.number))  # type: ignore[operator]
    return [t.number for t in ranked[:top]]


def plan(ostudy: optuna.Study, confirm: Confirm) -> int:
    """Pick the configs to confirm (or keep the picks recorded for this search), enqueue a
    fresh-seed trial for every slot that no trial holds, and return how many slots wait to
    run (those just enqueued and those queued before).

    A slot is held by a trial that counts, runs or waits; a slot whose trial was
    interrupted or reaped as stale is enqueued again. The fresh seed is the one a trial of
    that number would get (it derives from the number), so a repeat never reuses a seed.
    """
    trials = ostudy.get_trials(deepcopy=False)
    # The search trials that count or run: another driver's running search trial is in the
    # search the picks were made after, so its end does not make them again.
    n_search = sum(
        is_search(t) and (_budget.counts(t) or t.state == TrialState.RUNNING) for t in trials
    )
    picks = ostudy.user_attrs.get(PICKS)
    kept = picks and picks["after"] >= n_search and picks["top"] == confirm.top
    if not kept or picks["seeds"] != confirm.seeds:
        numbers = pick(trials, ostudy.direction.name.lower(), confirm.top)
        picks = {"trials": numbers, "top": confirm.top, "seeds": confirm.seeds, "after": n_search}
        ostudy.set_user_attr(PICKS, picks)
    held = {_slot(t): t.state for t in trials if is_repeat(t) and _budget.holds(t)}
    by_number = {t.number: t for t in trials}
    waiting = 0
    for number in picks["trials"]:
        for index in range(1, confirm.seeds + 1):
            state = held.get((number, index))
            if state is None:
                ostudy.enqueue_trial(
                    dict(by_number[number].params),
                    user_attrs={_records.REPEAT_OF: [number, index]},
                    skip_if_exists=False,
                )
            waiting += state is None or state == TrialState.WAITING
    return waiting


def _slot(trial: FrozenTrial) -> tuple[int, int]:
    number, index = trial.user_attrs[_records.REPEAT_OF]
    return int(number), int(index)
