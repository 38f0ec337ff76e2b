"""Several drivers on one PostgreSQL study (a real server), each in its own OS process, as
on several machines: grid points are shared out exactly once, and one trial budget holds
across all drivers."""

from __future__ import annotations

import collections

import optuna
import pytest

from hptune.study import create_study, load_study
from hptune.study._liveness import DRIVER
from tests.study._execution_jobs import GRID_SPACE, SPACE
from tests.study.test_execution_signals import start_driver

FAST = {"heartbeat_interval": 0.5, "grace_period": 5.0}


def run_drivers(url: str, name: str, strategy: str, n: int = 2, **kwargs) -> None:
    procs = [start_driver(url, name, strategy, **kwargs) for _ in range(n)]
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
        assert out.strip() == "done"


@pytest.mark.slow
def test_two_drivers_evaluate_every_grid_point_exactly_once(postgres_db_url):
    # Created before the drivers start: the grid is enqueued once, by one process.
    create_study(
        GRID_SPACE, name="g", storage=postgres_db_url, strategy="grid", seed=0, direction="minimize"
    )
    run_drivers(postgres_db_url, "g", "grid", **FAST)
    trials = load_study("g", postgres_db_url).trials
    seen = collections.Counter((t.config["a"], t.config["b"]) for t in trials)
    assert seen == collections.Counter({(a, b): 1 for a in (1, 2, 3, 4) for b in (10, 20, 30)})
    assert all(t.state == "COMPLETE" and t.value == t.config["a"] * t.config["b"] for t in trials)
    assert n_drivers(postgres_db_url, "g") == 2  # both took part: the sharing was real


@pytest.mark.slow
def test_two_drivers_share_one_trial_budget(postgres_db_url):
    create_study(
        SPACE, name="b", storage=postgres_db_url, strategy="random", seed=0, direction="minimize"
    )
    run_drivers(postgres_db_url, "b", "random", max_total_trials=10, **FAST)
    trials = load_study("b", postgres_db_url).trials
    assert load_study("b", postgres_db_url).n_counted_trials == 10
    assert all(t.state in ("COMPLETE", "WAITING") for t in trials)  # WAITING: put back
    assert n_drivers(postgres_db_url, "b") == 2


def n_drivers(url: str, name: str) -> int:
    frozen = optuna.load_study(study_name=name, storage=url).get_trials()
    return len({t.system_attrs.get(DRIVER) for t in frozen if t.state.name == "COMPLETE"})
