"""Grid strategy: every point exactly once, conditional branches included, across re-opens."""

from __future__ import annotations

import json

import optuna
import pytest

from hptune.space import choice, randint
from hptune.study import _budget, create_study, load_study

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
    study = create_study(SPACE, storage=None, strategy="grid", seed=0)
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
    study = create_study(SMALL, name="g", storage=url, strategy="grid", seed=0)
    study.optimize(lambda c, t: seen.append(c) or 0.0, n_trials=4)
    assert len(seen) == 4
    # Re-opening (both ways) enqueues nothing new; the rest of the grid runs once.
    create_study(SMALL, name="g", storage=url, strategy="grid", load_if_exists=True)
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
    study = create_study(SMALL, name="i", storage=url, strategy="grid", seed=0)
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
    study = create_study(SMALL, name="d", storage=url, strategy="grid", seed=0)
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


def test_of_two_copies_popped_at_once_the_lower_numbered_runs(tmp_path):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    study = create_study({"lr": [0.1]}, name="p", storage=url, strategy="grid", seed=0)
    ostudy = study.optuna_study
    ostudy.enqueue_trial({"lr": 0.1})  # a second copy, trial 1
    first, second = ostudy.get_trials(states=(optuna.trial.TrialState.WAITING,))
    storage = ostudy._storage
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
