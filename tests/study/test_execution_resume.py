"""Resume after a driver dies: a real driver process on SQLite is SIGKILLed mid-study (its
two worker processes then end themselves); a second driver run reaps the trials it left
RUNNING, retries them with the same config and seed, and finishes the budget."""

from __future__ import annotations

import os
import signal
import time

import optuna
import pytest

from hptune.execution import FailureKind
from hptune.study import _budget, _records, create_study, load_study
from hptune.study._liveness import ATTEMPT, LIVE, RETRY_OF, Liveness, driver_of
from tests.study._execution_jobs import SPACE
from tests.study.test_execution_signals import start_driver, wait_for_states

FAST = {"heartbeat_interval": 0.2, "grace_period": 1.0}
STAGGERED = "tests.study._execution_jobs:staggered"


@pytest.mark.slow
def test_resume_after_sigkill_reaps_stale_trials_and_finishes_budget(tmp_path):
    url = f"sqlite:///{tmp_path / 'k.db'}"
    # Staggered trials (0.2-0.5 s) do not finish together, and 20 of them on 2 workers
    # leave seconds for the poll to find 3 complete and 2 running before the budget is done.
    proc = start_driver(
        url, "k", "random", n_workers=2, max_total_trials=20, objective=STAGGERED, **FAST
    )
    wait_for_states(url, "k", {"COMPLETE": 3, "RUNNING": 2}, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    before = {t.number: t for t in load_study("k", url).trials}
    completed = {n: t.value for n, t in before.items() if t.state == "COMPLETE"}
    stale = [n for n, t in before.items() if t.state == "RUNNING"]
    drivers = {driver_of(load_study("k", url).optuna_study.trials[n]) for n in stale}
    (driver,) = drivers
    assert len(completed) >= 3 and stale

    # At once: the dead driver ran on this host, so no grace period is waited out.
    study = load_study("k", url)
    study.optimize(
        STAGGERED,
        n_workers=2,
        max_total_trials=20,
        max_retries=1,
        **FAST,
    )

    after = {t.number: t for t in load_study("k", url).trials}
    assert {n: after[n].value for n in completed} == completed  # no completed trial lost
    for n in stale:
        assert after[n].state == "FAILED"
        assert after[n].failure_kind == "stale"
        assert after[n].failure_reason == f"stale: its driver ({driver}) is gone"
    assert load_study("k", url).n_counted_trials == 20
    assert all(t.state in ("COMPLETE", "FAILED") for t in after.values())
    # Each stale trial that had reached a worker was run again once, with its config and
    # seed. (The kill can land between an ask and the config being recorded: such a trial
    # never ran, does not count, and is replaced by a fresh trial instead.)
    dispatched = [n for n in stale if before[n].config]  # sampled: config from its params
    assert dispatched
    frozen = optuna.load_study(study_name="k", storage=url).get_trials()
    retries = {t.user_attrs[RETRY_OF]: t for t in frozen if RETRY_OF in t.user_attrs}
    assert sorted(retries) == sorted(dispatched)
    for n, retry in retries.items():
        assert retry.user_attrs[ATTEMPT] == 1 and retry.state.name == "COMPLETE"
        assert after[retry.number].config == before[n].config
        assert after[retry.number].seed == before[n].seed


def test_reap_fails_only_silent_trials_of_other_drivers(tmp_path):
    study = create_study(
        SPACE, name="r", storage=None, strategy="random", seed=0, direction="maximize"
    )
    ostudy = study.optuna_study
    old, fresh, mine = (ostudy.ask() for _ in range(3))
    for t in (old, fresh, mine):
        t.suggest_float("x", 0.0, 1.0)
    other = Liveness(ostudy, "other", heartbeat_interval=0.1, grace_period=5.0)
    me = Liveness(ostudy, "me", heartbeat_interval=0.1, grace_period=5.0, max_retries=2)
    for t in (old, fresh):
        other.claim(t._trial_id)
    me.claim(mine._trial_id)
    old_beat = {"driver": "other", "beat": time.time() - 60}
    ostudy._storage.set_trial_system_attr(old._trial_id, LIVE, old_beat)
    reaped = me.reap()
    assert [t.number for t in reaped] == [old.number]
    states = {t.number: t.state.name for t in ostudy.get_trials()}
    assert states[old.number] == "FAIL" and states[fresh.number] == states[mine.number] == "RUNNING"
    reason = _records.fact(ostudy.get_trials()[old.number].user_attrs, _records.FAILURE)
    assert reason in (
        "stale: its driver stopped (no heartbeat for 60 s)",
        "stale: its driver stopped (no heartbeat for 61 s)",
    )
    retry = ostudy.get_trials()[-1]
    assert retry.state.name == "WAITING" and retry.user_attrs[RETRY_OF] == old.number
    assert me.reap() == []  # already reaped: nothing twice


def test_reaped_trial_whose_config_was_not_drawn_is_not_retried():
    # A driver killed while drawing a config: the trial never ran.
    study = create_study(
        SPACE, name="u", storage=None, strategy="random", seed=0, direction="maximize"
    )
    ostudy = study.optuna_study
    ran, unsent = ostudy.ask(), ostudy.ask()
    ran.suggest_float("x", 0.0, 1.0)  # unsent has no param yet
    other = Liveness(ostudy, "other", heartbeat_interval=0.1, grace_period=5.0)
    for t in (ran, unsent):
        other.claim(t._trial_id)
        old_beat = {"driver": "other", "beat": time.time() - 60}
        ostudy._storage.set_trial_system_attr(t._trial_id, LIVE, old_beat)
    me = Liveness(ostudy, "me", heartbeat_interval=0.1, grace_period=5.0, max_retries=1)
    assert sorted(t.number for t in me.reap()) == [ran.number, unsent.number]
    retries = [t.user_attrs[RETRY_OF] for t in ostudy.get_trials() if RETRY_OF in t.user_attrs]
    assert retries == [ran.number]


def test_resume_retries_interrupted_configs_with_their_seeds(tmp_path):
    url = f"sqlite:///{tmp_path / 'i.db'}"
    study = create_study(
        SPACE, name="i", storage=url, strategy="random", seed=0, direction="maximize"
    )

    def interrupted_at_the_third(config, trial):
        if trial.number == 2:
            raise KeyboardInterrupt  # Ctrl-C while the third trial runs
        return config["x"]

    with pytest.raises(KeyboardInterrupt):
        study.optimize(interrupted_at_the_third, max_total_trials=5)
    (lost,) = [t for t in load_study("i", url).trials if t.state == "FAILED"]
    assert lost.failure_kind == "interrupted"

    ran = []
    load_study("i", url).optimize(
        lambda c, t: ran.append((t.number, c, t.seed)) or c["x"], max_total_trials=5, max_retries=1
    )
    after = load_study("i", url)
    assert after.n_counted_trials == 5
    number, config, seed = ran[0]  # the queued retry runs first
    assert (config, seed) == (lost.config, lost.seed)
    assert after.optuna_study.trials[number].user_attrs[RETRY_OF] == lost.number


def test_two_drivers_requeueing_one_trial_at_once_run_it_once():
    study = create_study(
        SPACE, name="d", storage=None, strategy="random", seed=0, direction="maximize"
    )
    ostudy = study.optuna_study
    lost = ostudy.ask()
    lost.suggest_float("x", 0.0, 1.0)
    _records.write_failure(ostudy._storage, lost._trial_id, {}, FailureKind.INTERRUPTED, "x")
    ostudy.tell(lost, state=optuna.trial.TrialState.FAIL)
    # Each driver saw no retry of it when it started, so each queued one.
    for _ in range(2):
        ostudy.enqueue_trial(dict(lost.params), user_attrs={RETRY_OF: lost.number, ATTEMPT: 1})
    assert _budget.pop_waiting(ostudy) is not None
    assert _budget.pop_waiting(ostudy) is None  # the second copy is dropped, not run
    kinds = [t.failure_kind for t in study.trials]
    assert kinds == ["interrupted", None, "duplicate"]
    assert study.trials[2].failure_reason == "duplicate: retry of trial 1"
    assert Liveness(ostudy, "c", 0.1, 5.0, max_retries=1).requeue() == []  # already retried
