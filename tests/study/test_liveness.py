"""Liveness between drivers on one real SQLite study: a live driver's long trial is never
reaped, and a driver whose trial was reaped anyway stops it and goes on."""

from __future__ import annotations

import logging
import threading
import time

import optuna

from hptune.execution import FailureKind
from hptune.study import _records, create_study, load_study
from hptune.study._liveness import Liveness
from tests.study._execution_jobs import SPACE


def _peer_reaping(url: str, name: str, stop: threading.Event, reaped: list) -> None:
    """Another driver, reaping every 50 ms with a 0.6 s grace period."""
    ostudy = optuna.load_study(study_name=name, storage=url)
    peer = Liveness(ostudy, "peer", heartbeat_interval=0.05, grace_period=0.6)
    while not stop.is_set():
        reaped.extend(t.number for t in peer.reap())
        time.sleep(0.05)


def test_a_long_inline_trial_without_reports_keeps_its_heartbeat(tmp_path):
    # The trial blocks the driver's loop for 2 s, more than three grace periods, and never
    # reports: only the heartbeat thread can keep it alive.
    url = f"sqlite:///{tmp_path / 'l.db'}"
    study = create_study(
        SPACE, name="l", storage=url, strategy="random", seed=0, direction="maximize"
    )
    stop, reaped = threading.Event(), []
    peer = threading.Thread(target=_peer_reaping, args=(url, "l", stop, reaped))
    peer.start()
    try:
        study.optimize(
            lambda c, t: time.sleep(2.0) or c["x"],
            n_trials=1,
            heartbeat_interval=0.1,
            grace_period=0.6,
        )
    finally:
        stop.set()
        peer.join()
    assert reaped == []
    (trial,) = load_study("l", url).trials
    assert trial.state == "COMPLETE"


def test_a_reaped_trial_is_stopped_at_its_next_report_and_the_study_goes_on(tmp_path, caplog):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    study = create_study(
        SPACE, name="r", storage=url, strategy="random", seed=0, direction="maximize"
    )
    steps: dict[int, list[int]] = {}

    def objective(config, trial):
        steps[trial.number] = []
        for step in range(5):
            if trial.number == 0 and step == 2:
                # Another driver reaps this trial (as after a long storage outage).
                ostudy = optuna.load_study(study_name="r", storage=url)
                frozen = ostudy.trials[0]
                _records.write_failure(
                    ostudy._storage, frozen._trial_id, frozen.user_attrs, FailureKind.STALE, "stale"
                )
                ostudy._storage.set_trial_state_values(
                    frozen._trial_id, optuna.trial.TrialState.FAIL
                )
            steps[trial.number].append(step)
            trial.report(step, config["x"])
        return config["x"]

    with caplog.at_level(logging.WARNING, logger="hptune.study"):
        study.optimize(objective, n_trials=2)
    assert steps == {0: [0, 1, 2], 1: [0, 1, 2, 3, 4]}  # stopped at the report after the reap
    first, second = load_study("r", url).trials
    assert (first.state, first.failure_reason) == ("FAILED", "stale")  # the reaper's record
    assert second.state == "COMPLETE"
    assert "trial 0 was finished by another driver (FAIL: stale)" in caplog.text
