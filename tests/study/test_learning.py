"""What the strategies and pruners buy: learning from NaN, beating random search, pruning
with ASHA, coarse-to-fine stages and its boundary warning."""

from __future__ import annotations

import math
import statistics
import warnings

import pytest

from hptune.space import loguniform, uniform
from hptune.study import RangeBoundaryWarning, TrialDiverged, create_study, load_study


def _nan_above_half(config, trial):
    x = config["x"]
    return -((x - 0.25) ** 2) if x <= 0.5 else float("nan")


def _diverges_above_half(config, trial):
    if config["x"] > 0.5:
        raise TrialDiverged(f"loss exploded at x={config['x']:.2f}")
    return -((config["x"] - 0.25) ** 2)


def _share_above_half(objective, seed, penalize=True):
    study = create_study(
        {"x": uniform(0, 1)}, storage=None, strategy="tpe", seed=seed, direction="maximize"
    )
    if not penalize:  # plain Optuna: the sampler never sees failed trials
        study.optuna_study.sampler = study.optuna_study.sampler.sampler
    study.optimize(objective, n_trials=40)
    later = [t.config["x"] for t in study.trials[20:]]
    return sum(x > 0.5 for x in later) / len(later)


@pytest.mark.parametrize("objective", [_nan_above_half, _diverges_above_half])
def test_sampler_learns_that_nan_and_divergence_are_bad(objective):
    seeds = range(5)
    learned = statistics.median(_share_above_half(objective, s) for s in seeds)
    plain = statistics.median(_share_above_half(objective, s, penalize=False) for s in seeds)
    # Chance is 0.5. Without the penalty TPE keeps proposing the failing region, since its
    # history never changes; with it, later trials keep out of the region.
    assert plain >= 0.8
    assert learned <= 0.2


BENCH_SPACE = {
    "lr": loguniform(1e-5, 1.0),
    "weight_decay": loguniform(1e-7, 1e-1),
    "momentum": uniform(0.0, 0.99),
}


def _narrow_log_optimum(config, trial):
    """A narrow Gaussian bump at lr=3e-3, wd=1e-4, momentum=0.9 (log scale for lr, wd)."""
    d2 = ((math.log10(config["lr"]) - math.log10(3e-3)) / 0.25) ** 2
    d2 += ((math.log10(config["weight_decay"]) + 4) / 0.5) ** 2
    d2 += ((config["momentum"] - 0.9) / 0.1) ** 2
    return math.exp(-0.5 * d2)


def _median_best(strategy):
    best = []
    for seed in range(10):
        study = create_study(
            BENCH_SPACE, storage=None, strategy=strategy, seed=seed, direction="maximize"
        )
        study.optimize(_narrow_log_optimum, n_trials=40)
        best.append(study.best_value)
    return statistics.median(best)


@pytest.mark.slow
def test_tpe_and_coarse_to_fine_beat_random_search():
    random_best = _median_best("random")
    assert _median_best("tpe") > random_best + 0.3
    assert _median_best("coarse-to-fine") > random_best + 0.3


def _learning_curve(config, trial):
    """Accuracy-like curves that rise to a ceiling set by lr (best at lr=1e-2)."""
    ceiling = math.exp(-((math.log10(config["lr"]) + 2) ** 2))
    value = 0.0
    for epoch in range(1, 28):
        value = ceiling * (1 - math.exp(-epoch / 4))
        trial.report(epoch, value)
    return value


def test_asha_spends_far_fewer_epochs():
    spent = {}
    for pruner in ("none", "asha"):
        study = create_study(
            {"lr": loguniform(1e-5, 1.0)},
            storage=None,
            strategy="random",
            pruner=pruner,
            seed=0,
            epochs=27,
            direction="maximize",
        )
        study.optimize(_learning_curve, n_trials=30)
        spent[pruner] = sum(len(t.intermediate_values) for t in study.trials)
        if pruner == "asha":
            assert {t.state for t in study.trials} == {"COMPLETE", "PRUNED"}
            # Rungs at 2, 6 and 18 epochs: min_resource = (27 - 1) // 3**2 = 2.
            assert {max(t.intermediate_values) for t in study.trials if t.state == "PRUNED"} <= {
                2,
                6,
                18,
            }
    assert spent["none"] == 30 * 27
    assert spent["asha"] < 0.5 * spent["none"]


def _lr_upward(config, trial):
    return math.log10(config["lr"]) - (config["momentum"] - 0.5) ** 2


def _lr_inside(config, trial):
    return -((math.log10(config["lr"]) + 2.5) ** 2) - (config["momentum"] - 0.5) ** 2


C2F_SPACE = {"lr": loguniform(1e-4, 1e-1), "momentum": uniform(0.0, 1.0)}


def test_coarse_to_fine_records_stages_and_warns_at_the_bound():
    study = create_study(
        C2F_SPACE, storage=None, strategy="coarse-to-fine", seed=0, direction="maximize"
    )
    with pytest.warns(RangeBoundaryWarning) as record:
        study.optimize(_lr_upward, n_trials=30)
    messages = [str(w.message) for w in record]
    assert messages == [
        "lr: the best trials sit at the upper bound 0.1 of the original range [0.0001, 0.1]; widen it"
    ]
    assert study.notes == messages
    stages = [t.stage for t in study.trials]
    assert stages == ["coarse"] * 12 + ["fine"] * 18  # ceil(0.4 * 30) coarse trials
    plan = study.optuna_study.user_attrs["hptune.coarse_to_fine"]
    assert plan["n_coarse"] == 12 and plan["top_k"] == 3
    lr_box = plan["box"]["lr"]
    assert 1e-4 < lr_box["low"] < lr_box["high"] == pytest.approx(0.1)
    for t in study.trials[12:]:
        assert lr_box["low"] <= t.config["lr"] <= lr_box["high"]
    top = [t for t in study.trials if t.number in plan["top_trials"]]
    assert all(lr_box["low"] <= t.config["lr"] for t in top)


def test_coarse_to_fine_is_silent_when_the_optimum_is_inside():
    study = create_study(
        C2F_SPACE, storage=None, strategy="coarse-to-fine", seed=0, direction="maximize"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", RangeBoundaryWarning)
        study.optimize(_lr_inside, n_trials=30)
    assert study.notes == []
    assert abs(math.log10(study.best_config["lr"]) + 2.5) < 0.3
    box = study.optuna_study.user_attrs["hptune.coarse_to_fine"]["box"]["lr"]
    # Narrowed around the optimum in log space: narrower than the original three decades.
    assert math.log10(box["high"]) - math.log10(box["low"]) < 3.0
    assert box["low"] < 10**-2.5 < box["high"]


def test_coarse_to_fine_resumes_in_its_fine_stage(tmp_path):
    url = f"sqlite:///{tmp_path / 'c.db'}"
    study = create_study(
        C2F_SPACE, name="c", storage=url, strategy="coarse-to-fine", seed=1, direction="maximize"
    )
    study.optimize(_lr_inside, n_trials=10)  # 4 coarse, 6 fine
    box = study.optuna_study.user_attrs["hptune.coarse_to_fine"]["box"]
    again = load_study("c", url)
    again.optimize(_lr_inside, n_trials=3)
    trials = again.trials
    assert [t.stage for t in trials] == ["coarse"] * 4 + ["fine"] * 9
    assert again.optuna_study.user_attrs["hptune.coarse_to_fine"]["box"] == box
    for t in trials[10:]:
        assert box["lr"]["low"] <= t.config["lr"] <= box["lr"]["high"]


def test_coarse_to_fine_without_n_trials_uses_n_coarse_trials():
    study = create_study(
        C2F_SPACE,
        storage=None,
        strategy="coarse-to-fine",
        seed=0,
        strategy_options={"n_coarse_trials": 5},
        direction="maximize",
    )
    study.optimize(_lr_inside, timeout=1.0)  # only a timeout: the budget is unknown
    assert study.optuna_study.user_attrs["hptune.coarse_to_fine"]["n_coarse"] == 5
    stages = [t.stage for t in study.trials]
    n = min(5, len(stages))
    assert stages[:n] == ["coarse"] * n and stages[n:] == ["fine"] * (len(stages) - n)


def test_coarse_to_fine_in_deterministic_batches_runs_every_trial():
    study = create_study(
        {"x": uniform(0, 1)},
        storage=None,
        strategy="coarse-to-fine",
        seed=0,
        direction="minimize",
    )
    study.optimize(lambda c, t: (c["x"] - 0.3) ** 2, n_trials=10, deterministic=True, batch_size=3)
    stages = [t.stage for t in study.trials]
    assert len(stages) == 10 and stages.count("coarse") == 4 and stages.count("fine") == 6
