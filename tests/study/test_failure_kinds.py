"""Failure kinds are data: the budget, retries, the sampler and the report read a failed
trial's kind, never its message; studies written before kinds keep their meaning."""

from __future__ import annotations

import optuna
import pytest

from hptune.execution import FailureKind, OutcomeState, TrialJob, TrialOutcome
from hptune.execution._run import failure_kind, run_job
from hptune.study import _budget, _records, create_study
from hptune.study._liveness import Liveness
from hptune.study._view import penalize_failures
from hptune.trial import TrialDiverged

SPACE = {"x": [1.0, 2.0]}

#: How studies written before kinds were recorded look: (user attrs, the kind they mean).
LEGACY = [
    ({"hptune.failure_reason": "interrupted"}, FailureKind.INTERRUPTED),
    ({"hptune.failure_reason": "stale: its driver stopped (no heartbeat for 61 s)"}, FailureKind.STALE),
    ({"hptune.failure_reason": "duplicate: grid point of trial 3"}, FailureKind.DUPLICATE),
    ({"hptune.failure_reason": "worker killed by signal 9 (SIGKILL)"}, FailureKind.WORKER_DIED),
    ({"hptune.failure_reason": "worker exited with code 3"}, FailureKind.WORKER_DIED),
    ({"hptune.failure_reason": "Ray worker died: WorkerCrashedError: x"}, FailureKind.WORKER_DIED),
    ({"hptune.failure_reason": "timed out after 2.0 s"}, FailureKind.TIMEOUT),
    ({"hptune.failure_reason": "TrialDiverged: loss became nan"}, FailureKind.DIVERGED),
    ({"hptune.failure_reason": "objective returned nan", "hptune.penalize": True}, FailureKind.DIVERGED),
    ({"hptune.failure_reason": "_Exploded", "hptune.penalize": True}, FailureKind.DIVERGED),
    ({"hptune.failure_reason": "MemoryError"}, FailureKind.OUT_OF_MEMORY),
    ({"hptune.failure_reason": "ValueError: bad batch"}, FailureKind.ERROR),
    ({}, FailureKind.ERROR),  # failed by Optuna itself, with no hptune record
]  # fmt: skip


def _failed(user_attrs: dict) -> optuna.trial.FrozenTrial:
    return optuna.trial.create_trial(
        state=optuna.trial.TrialState.FAIL,
        params={"x": 1.0},
        distributions={"x": optuna.distributions.CategoricalDistribution([1.0, 2.0])},
        user_attrs=user_attrs,
    )


@pytest.mark.parametrize(("attrs", "kind"), LEGACY)
def test_a_trial_written_before_kinds_gets_its_kind_from_its_message(attrs, kind):
    trial = _failed(attrs)
    assert _records.failure_kind(trial) is kind
    assert _records.record_from_frozen(trial).failure_kind is kind
    assert _budget.counts(trial) == (kind not in _budget.NOT_COUNTED)


def test_the_stored_kind_wins_over_any_message():
    # Rewording a message must not change a decision: the kind decides.
    counted = _failed(
        {"hptune.failure_reason": "stale-looking text", "hptune.failure_kind": "error"}
    )
    assert _records.failure_kind(counted) is FailureKind.ERROR and _budget.counts(counted)
    free = _failed(
        {"hptune.failure_reason": "Ctrl-C pressed", "hptune.failure_kind": "interrupted"}
    )
    assert not _budget.counts(free)


def test_retries_follow_the_kind_not_the_message():
    study = optuna.create_study()
    live = Liveness(study, "me", heartbeat_interval=1.0, grace_period=5.0, max_retries=1)
    trial = _failed({"hptune.config": {"x": 1.0}, "hptune.seed": 7})
    assert live.retry(trial, FailureKind.WORKER_DIED)  # whatever its message said
    assert not live.retry(trial, FailureKind.ERROR)
    (queued,) = study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert queued.user_attrs["hptune.seed"] == 7 and queued.user_attrs["hptune.attempt"] == 1


def test_the_sampler_learns_from_the_diverged_kind_only():
    complete = optuna.trial.create_trial(
        value=0.5,
        params={"x": 1.0},
        distributions={"x": optuna.distributions.CategoricalDistribution([1.0, 2.0])},
    )
    diverged = _failed({"hptune.failure_kind": "diverged", "hptune.failure_reason": "x"})
    plain = _failed({"hptune.failure_kind": "error", "hptune.failure_reason": "nan inf diverged"})
    for number, trial in enumerate((complete, diverged, plain)):
        trial.number = number
    study = optuna.create_study(direction="maximize")
    shown = penalize_failures(study, [complete, diverged, plain])
    assert [t.state.name for t in shown] == ["COMPLETE", "COMPLETE", "FAIL"]
    assert shown[1].value == 0.5


class _Exploded(TrialDiverged):
    pass


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (ValueError("loss is nan"), FailureKind.ERROR),
        (TrialDiverged("loss exploded"), FailureKind.DIVERGED),
        (_Exploded(), FailureKind.DIVERGED),
        (MemoryError(), FailureKind.OUT_OF_MEMORY),
        (RuntimeError("CUDA error: out of memory"), FailureKind.OUT_OF_MEMORY),
        (RuntimeError("size mismatch"), FailureKind.ERROR),
    ],
)
def test_run_job_gives_each_exception_its_kind(exc, kind):
    def objective(config, trial):
        raise exc

    assert failure_kind(exc) is kind
    outcome = run_job(TrialJob(0, {}, 0, objective), lambda step, value: False)
    assert (outcome.state, outcome.kind) == (OutcomeState.FAILED, kind)


def test_a_non_finite_value_settles_as_diverged_and_is_recorded_so():
    settled = TrialOutcome(0, OutcomeState.COMPLETE, value=float("nan")).settled()
    assert (settled.state, settled.kind, settled.reason) == (
        OutcomeState.FAILED,
        FailureKind.DIVERGED,
        "objective returned nan",
    )
    finite = TrialOutcome(0, OutcomeState.COMPLETE, value=1.0)
    assert finite.settled() is finite
    study = create_study(SPACE, storage=None, strategy="grid", seed=0, direction="maximize")
    study.optimize(lambda c, t: float("inf") if c["x"] == 2.0 else 1.0)
    kinds = {t.config["x"]: t.failure_kind for t in study.trials}
    assert kinds == {1.0: None, 2.0: FailureKind.DIVERGED}


def test_the_sampler_learns_from_out_of_memory_too():
    def objective(config, trial):
        if config["x"] == 2.0:
            raise MemoryError()
        return 1.0

    study = create_study(SPACE, storage=None, strategy="grid", seed=0, direction="maximize")
    study.optimize(objective)
    shown = penalize_failures(study.optuna_study, study.optuna_study.trials)
    assert [t.state.name for t in shown] == ["COMPLETE", "COMPLETE"]
    assert {t.failure_kind for t in study.trials} == {None, FailureKind.OUT_OF_MEMORY}
