"""Deterministic parallel mode: the same configs (and pruning decisions) for 1, 2 and 4 real
worker processes, with an objective whose timing is random."""

from __future__ import annotations

import pytest

from hptune.study import create_study
from tests.study._execution_jobs import SPACE

#: Each model-based strategy with options that make its model work within 12 trials.
STRATEGIES = {
    "tpe": {"n_startup_trials": 4},
    "multi-fidelity": {"min_points_in_model": 3},
}


def run(
    n_workers: int, deterministic: bool = True, pruner: str = "median", strategy: str = "tpe"
) -> list[tuple]:
    study = create_study(
        SPACE,
        storage=None,
        strategy=strategy,
        strategy_options=STRATEGIES[strategy],
        pruner=pruner,
        epochs=3,
        direction="minimize",
        seed=3,
    )
    study.optimize(
        "tests.study._execution_jobs:jittery",
        n_trials=12,
        n_workers=n_workers,
        executor="process",
        executor_options={"devices": "cpu"},
        deterministic=deterministic,
        batch_size=4,
    )
    return [(t.number, t.config["x"], t.state, t.value) for t in study.trials]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("strategy", "pruner"),
    [("tpe", "hyperband"), ("tpe", "asha"), ("multi-fidelity", "asha")],
)
def test_same_configs_and_pruning_for_one_and_two_workers_with_rung_pruners(strategy, pruner):
    one, two = run(1, pruner=pruner, strategy=strategy), run(2, pruner=pruner, strategy=strategy)
    assert one == two
    assert "PRUNED" in {s for _, _, s, _ in one}


@pytest.mark.slow
def test_same_configs_for_one_two_and_four_workers():
    one, two, four = run(1), run(2), run(4)
    assert one == two == four
    assert len(one) == 12 and len({x for _, x, _, _ in one}) == 12
    assert {s for _, _, s, _ in one} <= {"COMPLETE", "PRUNED"}


def test_batches_keep_order_inline():
    study = create_study(SPACE, storage=None, strategy="random", direction="minimize", seed=1)
    study.optimize(lambda c, t: c["x"], n_trials=6, deterministic=True, batch_size=4)
    sequential = create_study(SPACE, storage=None, strategy="random", direction="minimize", seed=1)
    sequential.optimize(lambda c, t: c["x"], n_trials=6)
    # Random draws do not depend on history: batching changes nothing but the schedule.
    assert [t.config for t in study.trials] == [t.config for t in sequential.trials]
    assert [t.number for t in study.trials] == list(range(6))
