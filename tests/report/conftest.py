"""Studies for the report tests: real SQLite files, cheap objectives that report learning
curves, a pruner that prunes, and trials that fail."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import optuna
import pytest

from hptune.space import choice, loguniform, randint, uniform
from hptune.study import Study, TrialDiverged, create_study

#: A parameter name the report must escape (the space accepts any key without a dot).
SCRIPT_KEY = "<script>alert(1)</script>"
EPOCHS = 8


def curve_objective(config: dict, trial) -> float:
    """Validation accuracy that peaks at lr = 0.03 and rises over epochs; lr > 0.3
    diverges (NaN loss), and every 9th trial is killed."""
    lr = config["lr"]
    if trial.number % 9 == 4:
        raise RuntimeError("worker killed by signal 9")
    rng = np.random.default_rng(trial.seed)
    penalty = 0.02 if config["optimizer"]["name"] == "sgd" else 0.0
    final = 0.9 - 0.1 * (math.log10(lr) + 1.5) ** 2 - penalty
    for epoch in range(1, EPOCHS + 1):
        if lr > 0.3 and epoch == 2:
            raise TrialDiverged(f"loss became nan at epoch {epoch}")
        trial.report(epoch, final * (1 - math.exp(-epoch / 2.5)) + 0.003 * rng.standard_normal())
    return final + 0.003 * rng.standard_normal()


CURVE_SPACE = {
    "lr": loguniform(1e-4, 1.0),
    "batch_size": choice(32, 64, 128),
    "warmup_epochs": randint(0, 3),
    "optimizer": choice(
        {"adam": {"beta1": uniform(0.85, 0.95)}, "sgd": {"momentum": uniform(0.8, 0.99)}}
    ),
    SCRIPT_KEY: uniform(0.0, 1.0),
}


@pytest.fixture(scope="package")
def curve_study(tmp_path_factory) -> tuple[Study, str]:
    """30 TPE trials with a median pruner on a real SQLite file; some PRUNED, some FAILED
    (diverged and killed). Returns the study and its storage URL."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = f"sqlite:///{tmp_path_factory.mktemp('report') / 'curves.db'}"
    study = create_study(
        CURVE_SPACE,
        name="curves <b>& co</b>",
        storage=url,
        strategy="tpe",
        pruner="median",
        seed=3,
        epochs=EPOCHS,
        direction="maximize",
    )
    study.optimize(curve_objective, n_trials=30)
    states = {t.state for t in study.trials}
    assert states == {"COMPLETE", "PRUNED", "FAILED"}, states  # the fixture's premise
    return study, url


@pytest.fixture(scope="package")
def curve_report(curve_study, tmp_path_factory) -> Path:
    from hptune.report import write_report

    study, _ = curve_study
    return write_report(study, tmp_path_factory.mktemp("html") / "report.html", dpi=60)


def sqlite_url(tmp_path: Path, name: str = "h.db") -> str:
    return f"sqlite:///{tmp_path / name}"
