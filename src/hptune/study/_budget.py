"""A trial budget shared by every driver of a study, and race-free popping of queued trials.

Several drivers (on several machines, one PostgreSQL study) must together start no more
than ``max_total_trials`` trials that count. The storage is the only thing they share, so:

1. Before each ask a driver counts the study's trials that count (COMPLETE, PRUNED, and
   FAILED for a reason other than :data:`NOT_COUNTED`) plus those RUNNING anywhere, and
   asks nothing when that reaches the budget.
2. Two drivers may pass that check at once. After the ask, each counts again the trials
   *numbered at most its own* (trial numbers are assigned by the storage, so every driver
   sees the same order); a driver whose trial lies beyond the budget puts it back to
   WAITING, unsampled, and stops. A later run (or a driver that needs it after a stale
   trial was reaped) pops it like any queued trial, so nothing is lost or run twice.

Queued (WAITING) trials are grid points and retries. :func:`pop_waiting` takes one the way
Optuna's own ``Study.ask`` does, with ``storage.set_trial_state_values(..., RUNNING)``,
which only one driver can win; unlike ``ask`` it never creates a new trial when the queue
is empty, so a grid driver that finds no point left stops instead of running a random one.
"""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial, TrialState

from hptune.study import _records

#: Failure reasons of trials that never had a fair run; they do not use up the budget.
NOT_COUNTED = ("interrupted", "stale")


def counts(trial: FrozenTrial) -> bool:
    """Whether a finished trial used up a unit of the trial budget."""
    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    if trial.state == TrialState.FAIL:
        return not str(trial.user_attrs.get(_records.FAILURE, "")).startswith(NOT_COUNTED)
    return False


def n_used(ostudy: optuna.Study, up_to_number: int | None = None) -> int:
    """Trials that count or are RUNNING (anywhere), optionally only those numbered at most
    ``up_to_number``."""
    return sum(
        counts(t) or t.state == TrialState.RUNNING
        for t in ostudy.get_trials(deepcopy=False)
        if up_to_number is None or t.number <= up_to_number
    )


def pop_waiting(ostudy: optuna.Study) -> int | None:
    """Move one WAITING trial to RUNNING and return its id; None when none is left."""
    storage = ostudy._storage  # as optuna.Trial does; the calls below are public API
    for trial in ostudy.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        try:
            if storage.set_trial_state_values(trial._trial_id, TrialState.RUNNING):
                return trial._trial_id
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another driver ran it already
    return None


def put_back(ostudy: optuna.Study, trial_id: int) -> None:
    """Return a trial this driver started but must not run to the queue (see step 2)."""
    ostudy._storage.set_trial_state_values(trial_id, TrialState.WAITING)
