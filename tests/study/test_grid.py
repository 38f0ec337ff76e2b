"""Grid strategy: every point exactly once, conditional branches included, across re-opens."""

from __future__ import annotations

import json

from hptune.space import choice, randint
from hptune.study import create_study, load_study

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
    expected = [
        {"lr": lr, "optimizer": opt}
        for lr in (0.1, 0.01)
        for opt in (
            {"name": "adam"},
            {"name": "sgd", "momentum": 0.0},
            {"name": "sgd", "momentum": 0.9},
        )
    ]
    assert sorted(map(_key, seen)) == sorted(map(_key, expected))
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
