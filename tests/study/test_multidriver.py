"""Several drivers on one PostgreSQL study (a real server), each in its own OS process, as
on several machines, started at the same moment: they create the study once, grid points are
shared out exactly once, and one trial budget holds across all drivers."""

from __future__ import annotations

import collections

import optuna
import pytest

from hptune.study import load_study
from hptune.study._liveness import driver_of
from tests.study.test_execution_signals import start_driver

FAST = {"heartbeat_interval": 0.5, "grace_period": 5.0}


def run_drivers(url: str, name: str, strategy: str, tmp_path, n: int = 2, **kwargs) -> None:
    """Start ``n`` driver processes that open (or create) the study at the same moment."""
    go = tmp_path / f"go-{name}"
    procs = [start_driver(url, name, strategy, go_file=str(go), **kwargs) for _ in range(n)]
    for proc in procs:  # every driver has imported everything and waits at the barrier
        assert proc.stdout.readline().strip() == "ready", proc.communicate()
    go.touch()
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
        assert out.strip() == "done"


@pytest.mark.slow
def test_drivers_started_at_once_create_one_grid_and_evaluate_every_point_once(
    postgres_db_url, tmp_path
):
    # No one creates the study first: three drivers race to create it (the README's "start
    # hptune run on every machine"); one wins, the others wait for it to be initialized.
    run_drivers(postgres_db_url, "g", "grid", tmp_path, n=3, **FAST)
    trials = load_study("g", postgres_db_url).trials
    seen = collections.Counter((t.config["a"], t.config["b"]) for t in trials)
    assert seen == collections.Counter({(a, b): 1 for a in (1, 2, 3, 4) for b in (10, 20, 30)})
    assert all(t.state == "COMPLETE" and t.value == t.config["a"] * t.config["b"] for t in trials)
    assert n_drivers(postgres_db_url, "g") >= 2  # the sharing was real


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["random", "multi-fidelity"])
def test_drivers_started_at_once_share_one_budget_and_draw_different_configs(
    strategy, postgres_db_url, tmp_path
):
    run_drivers(postgres_db_url, "b", strategy, tmp_path, max_total_trials=10, **FAST)
    study = load_study("b", postgres_db_url)
    trials = study.trials
    assert study.n_counted_trials == 10
    assert all(t.state in ("COMPLETE", "WAITING") for t in trials)  # WAITING: put back
    assert n_drivers(postgres_db_url, "b") == 2
    # Both drivers loaded the study holding 0 trials: seeded alike, they would draw the
    # same configs; each re-seeds by the number of its first trial instead.
    xs = [t.config["x"] for t in trials if t.state == "COMPLETE"]
    assert len(set(xs)) == len(xs)


def n_drivers(url: str, name: str) -> int:
    frozen = optuna.load_study(study_name=name, storage=url).get_trials()
    return len({driver_of(t) for t in frozen if t.state.name == "COMPLETE"})


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_three_drivers_started_at_once_on_a_fresh_database_all_finish(backend, request, tmp_path):
    # Nothing exists yet, not even the database's tables: the three race to create them,
    # then the study, then share its budget. Each must exit 0 (run_drivers checks it).
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'fresh.db'}"
    else:
        url = request.getfixturevalue("postgres_db_url")
    run_drivers(url, "three", "random", tmp_path, n=3, max_total_trials=12, **FAST)
    study = load_study("three", url)
    assert study.n_counted_trials == 12
    assert all(t.state in ("COMPLETE", "WAITING") for t in study.trials)


@pytest.mark.slow
def test_drivers_that_confirm_at_once_run_each_slot_once_within_the_budget(
    postgres_db_url, tmp_path
):
    confirm = {"top": 2, "seeds": 2}
    run_drivers(
        postgres_db_url,
        "c",
        "random",
        tmp_path,
        max_total_trials=10,
        confirm=confirm,
        objective="tests.study._execution_jobs:slow_best",
        **FAST,
    )
    study = load_study("c", postgres_db_url)
    assert study.n_counted_trials == 10
    frozen = optuna.load_study(study_name="c", storage=postgres_db_url).get_trials()
    slots = [
        tuple(t.user_attrs["hptune.repeat_of"])
        for t in frozen
        if "hptune.repeat_of" in t.user_attrs and t.state.name == "COMPLETE"
    ]
    picks = study.optuna_study.user_attrs["hptune.confirm"]["trials"]
    assert sorted(slots) == sorted((n, i) for n in picks for i in (1, 2))
    # A slot both drivers enqueued ran once; the other copy was dropped, not counted.
    dropped = [t for t in study.trials if t.state == "FAILED"]
    assert all(t.failure_kind.value == "duplicate" for t in dropped)
    searched = [t for t in study.trials if t.repeat_of is None and t.state == "COMPLETE"]
    assert len(searched) == 6
    # minimize: the picks are the two lowest configs of the whole search, also those that
    # ran longest in the other driver (slow_best), which the first to confirm waited for
    assert sorted(t.value for t in searched)[:2] == sorted(study.trials[n].value for n in picks)
