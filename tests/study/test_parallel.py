"""The driver on real worker processes: records, reports and pruning cross the boundary."""

from __future__ import annotations

import math

import pytest

from hptune.space import loguniform
from hptune.study import create_study, load_study


def curve(config, trial):
    """Module-level so that spawned workers can import it."""
    if config["lr"] > 0.02:
        return float("nan")
    for epoch in range(1, 4):
        trial.report(epoch, epoch * config["lr"])
    return -((math.log10(config["lr"]) + 2) ** 2)


@pytest.mark.slow
def test_two_worker_processes_write_one_sqlite_study(tmp_path):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    study = create_study(
        {"lr": loguniform(1e-4, 1e-1)},
        name="p",
        storage=url,
        strategy="tpe",
        pruner="none",
        seed=0,
        direction="maximize",
    )
    study.optimize(curve, n_trials=8, n_workers=2)
    trials = load_study("p", url).trials
    assert [t.number for t in trials] == list(range(8))
    for t in trials:
        if t.config["lr"] > 0.02:
            assert t.state == "FAILED" and t.failure_reason == "objective returned nan"
        else:
            assert t.state == "COMPLETE"
            assert t.intermediate_values == {e: e * t.config["lr"] for e in (1, 2, 3)}
        assert t.seed is not None and t.config_hash and t.stage == "tpe"
    assert {t.state for t in trials} == {"COMPLETE", "FAILED"}  # both branches were taken
