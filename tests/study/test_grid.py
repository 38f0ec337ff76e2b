"""Grid strategy: every point exactly once, conditional branches included, across re-opens,
with a window of the shuffled grid queued at a time (grids of 10^12 points included)."""

from __future__ import annotations

import json
import re

import optuna
import pytest
from optuna.trial import TrialState

from hptune.exceptions import ConfigError
from hptune.execution import FailureKind
from hptune.space import Space, choice, randint, uniform
from hptune.study import _budget, _optuna, _records, create_study, load_study
from hptune.study.strategies._grid import DEFAULT_QUEUED, GRID_ATTR
from tests.study._execution_jobs import GRID_SPACE
from tests.study.test_multidriver import FAST, n_drivers, run_drivers

# Hand count: lr 3 values x (adam: 2 betas + sgd: 2 momenta x 2 nesterov) x warmup 2 = 3*6*2 = 36
SPACE = {
    "lr": [0.1, 0.01, 0.001],
    "optimizer": choice(
        {"adam": {"beta1": [0.9, 0.95]}, "sgd": {"momentum": [0.0, 0.9], "nesterov": [True, False]}}
    ),
    "warmup": randint(0, 1),
}


def _key(config):
    return json.dumps(config, sort_keys=True)


def _expected():
    points = []
    for lr in (0.1, 0.01, 0.001):
        branches = [{"name": "adam", "beta1": b} for b in (0.9, 0.95)]
        branches += [
            {"name": "sgd", "momentum": m, "nesterov": n} for m in (0.0, 0.9) for n in (True, False)
        ]
        for opt in branches:
            for warmup in (0, 1):
                points.append({"lr": lr, "optimizer": opt, "warmup": warmup})
    return points


def test_grid_visits_each_point_once_and_stops(tmp_path):
    seen = []
    study = create_study(SPACE, storage=None, strategy="grid", seed=0, direction="maximize")
    study.optimize(lambda c, t: seen.append(c) or 0.0)  # no n_trials: the grid is the budget
    assert len(seen) == 36
    assert sorted(map(_key, seen)) == sorted(map(_key, _expected()))
    assert [t.state for t in study.trials] == ["COMPLETE"] * 36
    study.optimize(lambda c, t: seen.append(c) or 0.0)  # exhausted: runs nothing
    assert len(seen) == 36


SMALL = {"lr": [0.1, 0.01], "optimizer": choice({"adam": {}, "sgd": {"momentum": [0.0, 0.9]}})}


def test_grid_resumes_where_it_stopped(tmp_path):
    url = f"sqlite:///{tmp_path / 'g.db'}"
    seen = []
    study = create_study(
        SMALL, name="g", storage=url, strategy="grid", seed=0, direction="maximize"
    )
    study.optimize(lambda c, t: seen.append(c) or 0.0, n_trials=4)
    assert len(seen) == 4
    # Re-opening (both ways) enqueues nothing new; the rest of the grid runs once.
    create_study(
        SMALL, name="g", storage=url, strategy="grid", load_if_exists=True, direction="maximize"
    )
    again = load_study("g", url)
    assert len(again.trials) == 6  # 2 lr x (adam + sgd x 2 momenta)
    again.optimize(lambda c, t: seen.append(c) or 0.0)
    assert sorted(map(_key, seen)) == sorted(map(_key, _small_points()))
    assert [t.state for t in load_study("g", url).trials] == ["COMPLETE"] * 6


def _grid_order(seed, **options):
    from hptune.study import create_study

    study = create_study(
        {"lr": [1e-4, 1e-3, 1e-2, 1e-1], "batch_size": [32, 64, 128, 256]},
        storage=None,
        strategy="grid",
        strategy_options=options,
        seed=seed,
        direction="maximize",
    )
    study.optimize(lambda config, trial: 0.0, n_trials=4)
    return [(t.config["lr"], t.config["batch_size"]) for t in study.trials if t.state == "COMPLETE"]


def test_a_partial_grid_spreads_over_the_space_in_a_seeded_order():
    first = _grid_order(seed=0)
    assert first == _grid_order(seed=0) and first != _grid_order(seed=1)
    # In the space's own order, 4 of 16 points all have the smallest lr.
    assert {lr for lr, _ in _grid_order(seed=0, shuffle=False)} == {1e-4}
    assert len({lr for lr, _ in first}) > 1


def test_a_resumed_grid_runs_the_points_of_interrupted_trials_again(tmp_path):
    url = f"sqlite:///{tmp_path / 'i.db'}"
    study = create_study(
        SMALL, name="i", storage=url, strategy="grid", seed=0, direction="maximize"
    )
    calls = []

    def interrupted_at_the_third(config, trial):
        calls.append(config)
        if len(calls) == 3:
            raise KeyboardInterrupt  # Ctrl-C while the third point runs
        return 0.0

    with pytest.raises(KeyboardInterrupt):
        study.optimize(interrupted_at_the_third)
    assert [t.failure_kind for t in load_study("i", url).trials if t.state == "FAILED"] == [
        "interrupted"
    ]
    resumed = load_study("i", url)
    resumed.optimize(lambda c, t: calls.append(c) or 0.0)
    done = [t.config for t in load_study("i", url).trials if t.state == "COMPLETE"]
    assert sorted(map(_key, done)) == sorted(map(_key, _small_points()))  # each point once
    assert len(calls) == 7  # 6 points, one of them twice: interrupted, then run


def test_a_grid_point_queued_twice_runs_once(tmp_path):
    # Two drivers re-opening a grid at the same moment may both enqueue a missing point;
    # whoever pops the later copy drops it as a duplicate, which does not count.
    url = f"sqlite:///{tmp_path / 'd.db'}"
    study = create_study(
        SMALL, name="d", storage=url, strategy="grid", seed=0, direction="maximize"
    )
    ostudy = study.optuna_study
    for t in ostudy.get_trials(states=(optuna.trial.TrialState.WAITING,))[:2]:
        ostudy.enqueue_trial(dict(t.system_attrs["fixed_params"]))  # later copies
    seen = []
    study.optimize(lambda c, t: seen.append(c) or 0.0)
    assert sorted(map(_key, seen)) == sorted(map(_key, _small_points()))
    records = load_study("d", url).trials
    dropped = [t for t in records if t.state == "FAILED"]
    assert len(dropped) == 2
    assert all(t.failure_kind == "duplicate" for t in dropped)
    assert all(t.failure_reason.startswith("duplicate: grid point of trial ") for t in dropped)
    assert load_study("d", url).n_counted_trials == 6


def _one_point_queued_twice(tmp_path):
    """A one-point grid whose point waits twice (trials 0 and 1): the study, both copies
    and the storage."""
    url = f"sqlite:///{tmp_path / 'p.db'}"
    study = create_study(
        {"lr": [0.1]}, name="p", storage=url, strategy="grid", seed=0, direction="maximize"
    )
    ostudy = study.optuna_study
    ostudy.enqueue_trial({"lr": 0.1})  # a second copy, trial 1
    first, second = ostudy.get_trials(states=(optuna.trial.TrialState.WAITING,))
    return ostudy, first, second, ostudy._storage


def test_of_two_copies_popped_at_once_the_lower_numbered_runs(tmp_path):
    ostudy, first, second, storage = _one_point_queued_twice(tmp_path)
    # Another driver popped the second copy at the same moment and has not checked yet.
    storage.set_trial_state_values(second._trial_id, optuna.trial.TrialState.RUNNING)
    assert _budget.pop_waiting(ostudy, unique=True) == first._trial_id  # lower number: kept
    popped = storage.get_trial(second._trial_id)
    assert _budget._holder(ostudy, popped, _budget.grid_point) == first.number


def _small_points():
    return [
        {"lr": lr, "optimizer": opt}
        for lr in (0.1, 0.01)
        for opt in (
            {"name": "adam"},
            {"name": "sgd", "momentum": 0.0},
            {"name": "sgd", "momentum": 0.9},
        )
    ]


# -- lazy grids: a window of the shuffled order in storage ----------------------------------

TRILLION = {f"d{i:02d}": randint(0, 9) for i in range(12)}  # 10^12 points


def _waiting(study):
    return len(study.optuna_study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))


def _no_listing(monkeypatch):
    monkeypatch.setattr(Space, "grid", lambda *a, **k: pytest.fail("the grid was listed"))


def test_a_grid_of_a_trillion_points_starts_at_once_with_one_window_in_storage(monkeypatch):
    _no_listing(monkeypatch)
    study = create_study(TRILLION, storage=None, strategy="grid", seed=0, direction="maximize")
    stored = []

    def objective(config, trial):
        stored.append(len(study.optuna_study.get_trials(deepcopy=False)))
        return 0.0

    study.optimize(objective, n_trials=1)
    assert stored == [DEFAULT_QUEUED]  # the first window, its first point running
    attr = study.optuna_study.user_attrs[GRID_ATTR]
    assert attr == {"size": 10**12, "n_points": None, "shuffle": True, "next": DEFAULT_QUEUED}


def test_a_million_point_grid_runs_50_trials_with_at_most_one_window_waiting(monkeypatch):
    _no_listing(monkeypatch)
    space = {"a": randint(0, 999, n_grid=1000), "b": randint(0, 999, n_grid=1000)}
    study = create_study(space, storage=None, strategy="grid", seed=0, direction="maximize")
    waiting = []
    study.optimize(lambda c, t: waiting.append(_waiting(study)) or 0.0, n_trials=50)
    # Topped up to 64 once 32 or fewer wait: never more than a window, never empty.
    assert max(waiting) == DEFAULT_QUEUED - 1 and min(waiting) == DEFAULT_QUEUED // 2
    assert len(study.trials) <= 50 + DEFAULT_QUEUED
    done = {(t.config["a"], t.config["b"]) for t in study.trials if t.state == "COMPLETE"}
    assert len(done) == 50
    assert len({a for a, _ in done}) > 40  # shuffled: not 50 points of the first row


def _small_run(**optimize):
    study = create_study(
        GRID_SPACE,
        storage=None,
        strategy="grid",
        seed=0,
        strategy_options={"n_queued": 2},
        direction="maximize",
    )
    study.optimize("tests.study._execution_jobs:product", **optimize)
    return study


def _each_point_once(study):
    done = [t.config for t in study.trials if t.state == "COMPLETE"]
    expected = [{"a": a, "b": b} for a in (1, 2, 3, 4) for b in (10, 20, 30)]
    return sorted(map(_key, done)) == sorted(map(_key, expected))


def test_a_grid_queued_two_points_at_a_time_runs_every_point_once():
    study = _small_run()
    assert _each_point_once(study)
    assert [t.state for t in study.trials] == ["COMPLETE"] * 12
    assert study.optuna_study.user_attrs[GRID_ATTR]["next"] == 12


@pytest.mark.slow
def test_two_workers_on_a_grid_queued_two_points_at_a_time_run_every_point_once():
    study = _small_run(n_workers=2)
    assert _each_point_once(study)
    assert [t.state for t in study.trials] == ["COMPLETE"] * 12


@pytest.mark.slow
def test_a_deterministic_windowed_grid_runs_the_same_configs_for_one_or_two_workers():
    one = _small_run(deterministic=True, batch_size=3)
    two = _small_run(deterministic=True, batch_size=3, n_workers=2)
    assert _each_point_once(one) and _each_point_once(two)
    assert [t.config for t in one.trials] == [t.config for t in two.trials]


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_two_drivers_started_at_once_on_a_windowed_grid_run_every_point_once(
    backend, tmp_path, request
):
    # A window of 2 points for 12: the drivers top the queue up over and over, often at the
    # same moment, enqueueing the same points; the later copy of each is dropped.
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'm.db'}"
    else:
        url = request.getfixturevalue("postgres_db_url")
    run_drivers(url, "m", "grid", tmp_path, n=2, strategy_options={"n_queued": 2}, **FAST)
    study = load_study("m", url)
    assert _each_point_once(study)
    assert {t.failure_kind for t in study.trials if t.state != "COMPLETE"} <= {"duplicate"}
    assert study.n_counted_trials == 12
    assert n_drivers(url, "m") == 2  # both drivers ran points


def test_an_interrupted_windowed_grid_resumes_and_runs_every_point_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    options = {"n_queued": 2}
    study = create_study(
        SMALL,
        name="w",
        storage=url,
        strategy="grid",
        seed=0,
        strategy_options=options,
        direction="maximize",
    )
    calls = []

    def interrupted_at_the_third(config, trial):
        calls.append(config)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return 0.0

    with pytest.raises(KeyboardInterrupt):
        study.optimize(interrupted_at_the_third)
    reopened = load_study("w", url)
    # 2 done, 1 interrupted, 1 waiting; the interrupted point is queued again, read from its
    # trial. The last 2 points were never enqueued: they come from the recorded position.
    assert [t.state for t in reopened.trials] == ["COMPLETE"] * 2 + ["FAILED"] + ["WAITING"] * 2
    reopened.optimize(lambda c, t: calls.append(c) or 0.0)
    done = [t.config for t in load_study("w", url).trials if t.state == "COMPLETE"]
    assert sorted(map(_key, done)) == sorted(map(_key, _small_points()))
    assert len(calls) == 7


def test_a_driver_that_finds_only_duplicates_queued_enqueues_more_instead_of_stopping():
    study = create_study(
        SMALL,
        storage=None,
        strategy="grid",
        seed=0,
        strategy_options={"n_queued": 2},
        direction="maximize",
    )
    ostudy = study.optuna_study
    for t in ostudy.get_trials(states=(TrialState.WAITING,)):
        ostudy.enqueue_trial(dict(t.system_attrs["fixed_params"]))  # copies, as a racing driver
    study.optimize(lambda c, t: 0.0, n_trials=2)  # runs the originals; the copies wait
    # The queue holds two points, both held already: popping drops them as duplicates and
    # finds nothing; the driver asks the strategy to refill and goes on.
    study.optimize(lambda c, t: 0.0)
    assert sorted(map(_key, [t.config for t in study.trials if t.state == "COMPLETE"])) == sorted(
        map(_key, _small_points())
    )
    assert [t.failure_kind for t in study.trials if t.state == "FAILED"] == ["duplicate"] * 2
    assert study.n_counted_trials == 6


def test_a_grid_study_written_before_grids_were_lazy_resumes_without_new_points(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    study = create_study(
        SMALL, name="old", storage=url, strategy="grid", seed=0, direction="maximize"
    )
    ostudy = study.optuna_study
    ostudy.set_user_attr(GRID_ATTR, {"size": 6, "enqueued": 6})  # as the old code left it
    first = _optuna.trial_id(ostudy.get_trials(states=(TrialState.WAITING,))[0])
    storage = _optuna.storage(ostudy)  # the first point was interrupted
    storage.set_trial_state_values(first, TrialState.RUNNING)
    _records.write_failure(storage, first, {}, FailureKind.INTERRUPTED, "interrupted")
    storage.set_trial_state_values(first, TrialState.FAIL)
    old = load_study("old", url)  # every point was queued: only the interrupted one again
    assert len(old.trials) == 7
    assert old.optuna_study.user_attrs[GRID_ATTR]["next"] == 6
    old.optimize(lambda c, t: 0.0)
    done = [t.config for t in load_study("old", url).trials if t.state == "COMPLETE"]
    assert sorted(map(_key, done)) == sorted(map(_key, _small_points()))


def test_the_window_must_hold_at_least_one_point():
    with pytest.raises(
        ConfigError,
        match=re.escape("strategy 'grid': n_queued must be an int >= 1, got 0."),
    ):
        create_study(
            SMALL,
            storage=None,
            strategy="grid",
            strategy_options={"n_queued": 0},
            direction="maximize",
        )


def test_a_grid_reopened_with_more_points_runs_only_the_new_ones(tmp_path):
    url = f"sqlite:///{tmp_path / 'n.db'}"
    space = {"x": uniform(0.0, 1.0)}
    coarse = create_study(
        space,
        name="n",
        storage=url,
        strategy="grid",
        seed=0,
        strategy_options={"n_points": 3},
        direction="maximize",
    )
    coarse.optimize(lambda c, t: 0.0)
    fine = create_study(
        space,
        name="n",
        storage=url,
        strategy="grid",
        strategy_options={"n_points": 5, "n_queued": 2},
        load_if_exists=True,
        direction="maximize",
    )
    fine.optimize(lambda c, t: 0.0)
    xs = [t.config["x"] for t in load_study("n", url).trials if t.state == "COMPLETE"]
    assert sorted(xs) == [0.0, 0.25, 0.5, 0.75, 1.0]  # 0, 0.5 and 1 ran once, on the coarse grid


def test_a_copy_another_driver_finishes_while_it_is_dropped_stops_nothing(tmp_path, monkeypatch):
    # Seen once under load with two drivers: between popping a duplicate and failing it,
    # the other driver reaped it; failing it again raised and stopped the driver.
    ostudy, first, second, storage = _one_point_queued_twice(tmp_path)
    storage.set_trial_state_values(first._trial_id, optuna.trial.TrialState.RUNNING)  # held
    holder = _budget._holder

    def reaped_meanwhile(ostudy, popped, key):
        storage.set_trial_state_values(popped._trial_id, optuna.trial.TrialState.FAIL)
        return holder(ostudy, popped, key)

    monkeypatch.setattr(_budget, "_holder", reaped_meanwhile)
    assert _budget.pop_waiting(ostudy, unique=True) is None
    assert storage.get_trial(second._trial_id).state == optuna.trial.TrialState.FAIL
