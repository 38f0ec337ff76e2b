"""A trial budget shared by every driver of a study, and race-free popping of queued trials.

Several drivers (on several machines, one PostgreSQL study) must together start no more
than ``max_total_trials`` trials that count. The storage is the only thing they share, so:

1. Before each ask a driver counts the study's trials that count (COMPLETE, PRUNED, and
   FAILED of a kind other than :data:`NOT_COUNTED`) plus those RUNNING anywhere, and
   asks nothing when that reaches the budget.
2. Two drivers may pass that check at once. After the ask, each counts again the trials
   *numbered at most its own* (trial numbers are assigned by the storage, so every driver
   sees the same order); a driver whose trial lies beyond the budget puts it back to
   WAITING, unsampled, and stops. A later run (or a driver that needs it after a stale
   trial was reaped) pops it like any queued trial, so nothing is lost or run twice.

Queued (WAITING) trials are grid points (a window of the grid at a time, see
``hptune.study.strategies._grid``), retries and put-backs. :func:`pop_waiting` takes one
the way Optuna's own ``Study.ask`` does, with ``storage.set_trial_state_values(...,
RUNNING)``, which only one driver can win; unlike ``ask`` it never creates a new trial when
the queue is empty, so a grid driver that finds no point left (and none to add) stops
instead of running a random one; and a grid point is never evaluated twice, even when two
drivers enqueued it at once (see its ``unique``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from hptune.execution.base import FailureKind
from hptune.study import _optuna, _records
from hptune.study._liveness import RETRY_OF

#: The system attribute in which Optuna's ``enqueue_trial`` keeps a queued trial's params.
FIXED_PARAMS = "fixed_params"

#: Failures of trials that never had a fair run; they do not use up the budget, and a
#: resumed run does them again.
NOT_COUNTED = frozenset({FailureKind.INTERRUPTED, FailureKind.STALE, FailureKind.DUPLICATE})


def counts(trial: FrozenTrial) -> bool:
    """Whether a finished trial used up a unit of the trial budget (a trial a warm start
    copied from another study did not: the budget is what this study runs)."""
    if _records.WARM_START_FROM in trial.user_attrs:
        return False
    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    if trial.state == TrialState.FAIL:
        return _records.failure_kind(trial) not in NOT_COUNTED
    return False


def n_used(ostudy: optuna.Study, up_to_number: int | None = None, search_only: bool = False) -> int:
    """Trials that count or are RUNNING (anywhere), optionally only those numbered at most
    ``up_to_number``, and with ``search_only`` only the search's (not the fresh-seed
    re-trainings of a confirmation, which have their own share of the budget)."""
    return sum(
        counts(t) or t.state == TrialState.RUNNING
        for t in ostudy.get_trials(deepcopy=False)
        if (up_to_number is None or t.number <= up_to_number)
        and not (search_only and _records.repeated_trial(t) is not None)
    )


def within(ostudy: optuna.Study, number: int, total: int | None, search_only: bool = False) -> bool:
    """Step 2: whether the trial numbered ``number`` lies within a budget of ``total``
    trials that count. Counting is O(trials), so it is skipped while it cannot matter: at
    most ``number + 1`` trials are numbered up to ``number``, so a number below ``total``
    is always within; only near the end of the budget is the study read."""
    if total is None or number < total:
        return True
    return n_used(ostudy, number, search_only) <= total


def holds(trial: FrozenTrial) -> bool:
    """Whether a trial holds its point of a grid: it counts, runs, or waits to run."""
    return counts(trial) or trial.state in (TrialState.RUNNING, TrialState.WAITING)


def grid_point(trial: FrozenTrial) -> str:
    """A trial's parameters as canonical JSON; a queued trial's are still its fixed ones."""
    params = trial.params or trial.system_attrs.get(FIXED_PARAMS, {})
    return _records.canonical_json(dict(params))


def held_points(ostudy: optuna.Study) -> set[str]:
    """The grid points (as :func:`grid_point` writes them) that some trial holds."""
    return {grid_point(t) for t in ostudy.get_trials(deepcopy=False) if holds(t)}


def lost_points(ostudy: optuna.Study) -> list[dict[str, Any]]:
    """The parameters of every point that was queued but that no trial holds any more
    (its trials were interrupted or reaped as stale), once each, in trial order: what a
    re-opened grid must enqueue again. Read from the trials alone, not from the grid."""
    trials = ostudy.get_trials(deepcopy=False)
    held = {grid_point(t) for t in trials if holds(t)}
    lost: dict[str, dict[str, Any]] = {}
    for trial in trials:
        point = grid_point(trial)
        if FIXED_PARAMS in trial.system_attrs and point not in held:
            lost.setdefault(point, dict(trial.system_attrs[FIXED_PARAMS]))
    return list(lost.values())


def pop_waiting(
    ostudy: optuna.Study,
    unique: bool = False,
    only: Callable[[FrozenTrial], bool] | None = None,
) -> int | None:
    """Move one WAITING trial to RUNNING and return its id; None when none is left
    (``only``: consider only the WAITING trials it accepts).

    A popped trial that repeats what another trial already holds is failed as a
    ``DUPLICATE`` (not counted) and the next one is popped: with ``unique`` (grids), a copy
    of a grid point; otherwise a second retry of the same failed trial, or a second trial
    of one confirmation slot (two drivers starting at once may both enqueue it). Of several
    copies, the one that runs is the copy popped
    while no other copy runs or has counted and no lower-numbered copy waits: two drivers
    popping copies at once keep the lower-numbered one, and a copy popped later finds it
    held.
    """
    storage = _optuna.storage(ostudy)
    for trial in ostudy.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        if only is not None and not only(trial):
            continue
        try:
            if not storage.set_trial_state_values(_optuna.trial_id(trial), TrialState.RUNNING):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another driver ran it already
        key = grid_point if unique else _copy_of
        holder = _holder(ostudy, trial, key) if key(trial) is not None else None
        if holder is None:
            return _optuna.trial_id(trial)
        what = "grid point" if unique else key(trial)[0]
        reason = f"duplicate: {what} of trial {holder}"
        try:
            _records.write_failure(
                storage, _optuna.trial_id(trial), trial.user_attrs, FailureKind.DUPLICATE, reason
            )
            storage.set_trial_state_values(_optuna.trial_id(trial), TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another driver finished it meanwhile (reaped it): not run either way
    return None


def _copy_of(trial: FrozenTrial) -> tuple[Any, ...] | None:
    """What ``trial`` is one copy of: ``("retry", n)`` for a retry of trial ``n``,
    ``("confirmation", n, i)`` for slot ``i`` of the confirmation of trial ``n``'s config;
    None for a trial of which no copy can exist."""
    retried = trial.user_attrs.get(RETRY_OF)
    if retried is not None:
        return ("retry", retried)
    slot = trial.user_attrs.get(_records.REPEAT_OF)
    return None if slot is None else ("confirmation", *slot)


def _holder(
    ostudy: optuna.Study, popped: FrozenTrial, key: Callable[[FrozenTrial], Any]
) -> int | None:
    """The number of another trial that holds what ``popped`` would run (the same
    ``key``: a grid point, or the trial it retries), if any."""
    point = key(popped)
    for other in ostudy.get_trials(deepcopy=False):
        if other.number == popped.number or key(other) != point:
            continue
        # A higher-numbered copy that runs was popped at the same moment as ours (had it
        # been popped earlier, ours waited below it and it dropped itself): it drops
        # itself when it sees ours. Every copy is enqueued WAITING, in number order.
        lower = other.number < popped.number
        if counts(other) or (lower and other.state in (TrialState.WAITING, TrialState.RUNNING)):
            return other.number
    return None


def put_back(ostudy: optuna.Study, trial_id: int) -> None:
    """Return a trial this driver started but must not run to the queue (see step 2)."""
    _optuna.storage(ostudy).set_trial_state_values(trial_id, TrialState.WAITING)
