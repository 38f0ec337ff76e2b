"""advise(): each rule fires on the evidence it names, with exact messages, and stays
silent without it. Studies are real (SQLite files) and scripted so that every expected
number is worked out by hand in the test."""

from __future__ import annotations

import math
import re

import pytest

from hptune.exceptions import ConfigError, HptuneError
from hptune.report import Advice, advise
from hptune.report._data import fmt
from hptune.space import choice, loguniform, uniform
from hptune.study import TrialDiverged, create_study
from hptune.trial import TrialPruned
from tests.report.conftest import sqlite_url


def _grid_study(tmp_path, space, objective, direction="maximize", name="s"):
    study = create_study(
        space,
        name=name,
        storage=sqlite_url(tmp_path),
        strategy="grid",
        strategy_options={"shuffle": False},
        direction=direction,
        seed=0,
    )
    study.optimize(objective)
    return study


def _kinds(advice):
    return [a.kind for a in advice]


# -- boundary -------------------------------------------------------------------------------


def test_boundary_fires_when_the_best_lrs_sit_at_the_upper_bound(tmp_path):
    # Accuracy grows with lr up to lr = 1, beyond the range: the best 3 of 6 (k = max(3,
    # ceil(0.6)) = 3) are 0.1, 0.085, 0.07. In log scale over [1e-4, 1e-1] they sit at
    # 1, log10(850)/3 = 0.976 and log10(700)/3 = 0.948: all within 10% of the top. (On a
    # linear scale 0.07 would sit at 0.70 and the rule would stay silent.)
    space = {"lr": loguniform(1e-4, 1e-1, grid=[1e-4, 1e-3, 1e-2, 0.07, 0.085, 0.1])}
    study = _grid_study(tmp_path, space, lambda c, t: -(math.log10(c["lr"]) ** 2))
    advice = advise(study)
    assert advice == [
        Advice(
            "boundary",
            "widen lr's upper bound (0.1): the best 3 trials are within 10% of it in log "
            "scale, so the optimum may lie beyond it.",
            {
                "parameter": "lr",
                "bound": 0.1,
                "side": "upper",
                "trials": [5, 4, 3],
                "values": [0.1, 0.085, 0.07],
            },
        )
    ]


def test_boundary_is_silent_when_the_best_sits_inside(tmp_path):
    # Peak at lr = 3e-3: the best trial (1e-3 or 1e-2) is inside the range.
    space = {"lr": loguniform(1e-4, 1e-1, grid=[1e-4, 1e-3, 3e-3, 1e-2, 0.07, 0.085, 0.1])}
    study = _grid_study(
        tmp_path, space, lambda c, t: -((math.log10(c["lr"]) - math.log10(3e-3)) ** 2)
    )
    assert advise(study) == []


def test_boundary_needs_all_of_the_best_near_the_bound(tmp_path):
    # The best (0.1) is at the bound but the third best (0.03, at log10(300)/3 = 0.83) is not.
    space = {"lr": loguniform(1e-4, 1e-1, grid=[1e-4, 1e-3, 0.03, 0.085, 0.1])}
    study = _grid_study(tmp_path, space, lambda c, t: c["lr"])
    assert advise(study) == []
    # A wider margin (20%) takes 0.03 in: now it fires, and says so.
    assert "within 20% of it" in advise(study, margin=0.2)[0].message


def test_boundary_lower_bound_linear_scale_and_minimize(tmp_path):
    # Minimizing x on uniform(0, 10): best 0, 0.4, 0.9 sit at 0, 0.04, 0.09 of the range.
    space = {"x": uniform(0.0, 10.0, grid=[0.0, 0.4, 0.9, 5.0, 10.0])}
    study = _grid_study(tmp_path, space, lambda c, t: c["x"], direction="minimize")
    (advice,) = advise(study)
    assert advice.message == (
        "widen x's lower bound (0): the best 3 trials are within 10% of it, "
        "so the optimum may lie beyond it."
    )
    assert advice.evidence["trials"] == [0, 1, 2] and advice.evidence["side"] == "lower"


def test_boundary_counts_only_trials_that_have_a_conditional_parameter(tmp_path):
    # momentum exists only in the sgd branch: 3 sgd trials, all with momentum at the top.
    space = {
        "optimizer": choice(
            {"adam": {}, "sgd": {"momentum": uniform(0.0, 0.9, grid=[0.85, 0.87, 0.9])}}
        ),
        "lr": choice(0.1, 0.2),
    }
    study = _grid_study(tmp_path, space, lambda c, t: c["optimizer"].get("momentum", 2.0) + c["lr"])
    # adam trials score 2.1/2.2, the best overall, but have no momentum: they do not count.
    (advice,) = advise(study)
    assert advice.evidence["parameter"] == "optimizer.sgd.momentum"
    assert advice.evidence["values"] == [0.9, 0.87, 0.85]


def test_boundary_is_silent_at_a_bound_no_value_can_cross(tmp_path):
    # The best trials warm up 0 epochs, train without weight decay and with a momentum of
    # 1, the ends of their ranges: a warmup or decay below 0 or a momentum above 1 means
    # nothing, so there is no bound to widen. The same ends on a parameter of another
    # name (x below) are advised as before.
    space = {
        "warmup_epochs": uniform(0.0, 5.0, grid=[0.0, 0.2, 0.4, 3.0]),
        "weight_decay": uniform(0.0, 0.1, grid=[0.0]),
        "momentum": uniform(0.5, 1.0, grid=[1.0]),
        "x": uniform(0.0, 5.0, grid=[0.0, 0.2, 0.4, 3.0]),
    }

    def objective(c, t):
        return -c["warmup_epochs"] - c["x"] - c["weight_decay"] + c["momentum"]

    study = _grid_study(tmp_path, space, objective)
    boundary = [a.evidence["parameter"] for a in advise(study) if a.kind == "boundary"]
    assert boundary == ["x"]
    assert (
        _kinds(
            advise(
                _grid_study(
                    tmp_path,
                    {"dropout": choice(0.0, 0.1, 0.2)},
                    lambda c, t: -c["dropout"],
                    name="d",
                )
            )
        )
        == []
    )


# -- failures -------------------------------------------------------------------------------


def _scripted_failures(config, trial):
    n = trial.number
    if n in (1, 4, 7):
        raise TrialDiverged(f"loss became nan at epoch {n}")
    if n in (2, 5):
        raise RuntimeError("worker killed by signal 9")
    if n == 8:
        return float("nan")
    if n == 9:
        raise ValueError("x" * 70)
    return config["x"]


def test_failures_are_grouped_by_reason_with_numbers_masked(tmp_path):
    space = {"x": uniform(0.0, 1.0, grid=[i / 12 for i in range(12)])}
    study = _grid_study(tmp_path, space, _scripted_failures)
    (failures,) = [a for a in advise(study) if a.kind == "failures"]
    # 7 of 12 failed: epochs 1, 4, 7 differ only in a number, so they are one group.
    assert failures.message == (
        "7 of 12 trials failed: 3 × 'TrialDiverged: loss became nan at epoch 1', "
        "2 × 'RuntimeError: worker killed by signal 9', 1 × 'objective returned nan', "
        f"1 × 'ValueError: {'x' * 47}…'."
    )
    assert failures.evidence["reasons"]["TrialDiverged: loss became nan at epoch 1"] == [1, 4, 7]
    assert failures.evidence["reasons"]["RuntimeError: worker killed by signal 9"] == [2, 5]


def test_failures_below_the_fraction_are_not_advice(tmp_path):
    space = {"x": uniform(0.0, 1.0, grid=[i / 11 for i in range(11)])}

    def one_failure(config, trial):
        if trial.number == 3:
            raise RuntimeError("boom")
        return config["x"] * 0 + 1.0  # flat: no boundary advice either

    study = _grid_study(tmp_path, space, one_failure)
    assert "failures" not in _kinds(advise(study))  # 1 of 11 < 10%
    assert "failures" in _kinds(advise(study, failure_fraction=0.05))


# -- diverged region ------------------------------------------------------------------------


def _diverges_above(threshold):
    def objective(config, trial):
        if config["lr"] > threshold:
            raise TrialDiverged("loss is inf")
        return 0.5

    return objective


def test_diverged_region_finds_the_threshold(tmp_path):
    # lr 0.4, 0.5, 0.8 diverge, 0.2 and below do not. The threshold is the geometric middle
    # of 0.2 and 0.4 (0.283), rounded to the fewest digits that stay between them: 0.3.
    grid = [1e-3, 1e-2, 0.05, 0.1, 0.2, 0.4, 0.5, 0.8]
    space = {"lr": loguniform(1e-3, 1.0, grid=grid)}
    study = _grid_study(tmp_path, space, _diverges_above(0.3))
    (region,) = [a for a in advise(study) if a.kind == "diverged_region"]
    assert region.message == (
        "lr above 0.3 always diverged (3/3 trials); consider lowering the upper bound (1) to 0.3."
    )
    assert region.evidence == {
        "parameter": "lr",
        "side": "upper",
        "threshold": 0.3,
        "trials": [7, 6, 5],
        "values": [0.8, 0.5, 0.4],
    }


def test_diverged_region_is_silent_when_divergence_does_not_separate(tmp_path):
    grid = [1e-3, 1e-2, 0.05, 0.1, 0.2, 0.4, 0.5, 0.8]
    space = {"lr": loguniform(1e-3, 1.0, grid=grid)}

    def scattered(config, trial):
        if config["lr"] in (1e-2, 0.2, 0.8):  # diverged at both ends and in the middle
            raise TrialDiverged("loss is nan")
        return 0.5

    study = _grid_study(tmp_path, space, scattered)
    assert "diverged_region" not in _kinds(advise(study))


def test_diverged_region_picks_the_parameter_that_explains_most(tmp_path):
    # wd is irrelevant; lr > 0.3 diverges. wd's top values are mixed, lr's are not.
    space = {
        "lr": loguniform(1e-3, 1.0, grid=[1e-3, 0.1, 0.5, 0.8]),
        "wd": uniform(0.0, 1.0, grid=[0.0, 1.0]),
    }
    study = _grid_study(tmp_path, space, _diverges_above(0.3))
    (region,) = [a for a in advise(study) if a.kind == "diverged_region"]
    assert region.evidence["parameter"] == "lr" and len(region.evidence["trials"]) == 4


# -- noise ----------------------------------------------------------------------------------


def test_noise_between_repeats_of_one_config(tmp_path):
    study = create_study(
        {"lr": choice(0.01, 0.1)},
        name="n",
        storage=sqlite_url(tmp_path),
        strategy="random",
        seed=0,
        direction="maximize",
    )
    for lr in (0.01, 0.01, 0.01, 0.1, 0.1):
        study.optuna_study.enqueue_trial({"lr": lr}, skip_if_exists=False)
    scripted = {0: 0.80, 1: 0.82, 2: 0.78, 3: 0.50, 4: 0.50}
    study.optimize(lambda c, t: scripted[t.number], n_trials=5)
    (noise,) = [a for a in advise(study) if a.kind == "noise"]
    assert noise.message == (
        "repeats of trial 0's config vary by ±0.02 (3 runs: 0.8, 0.82, 0.78): "
        "differences smaller than that are noise."
    )
    groups = noise.evidence["groups"]
    assert [g["trials"] for g in groups] == [[0, 1, 2], [3, 4]]
    assert groups[0]["half_range"] == pytest.approx(0.02) and groups[1]["half_range"] == 0.0


def test_after_a_confirmation_the_noise_is_the_fresh_seeds_pooled_sd(tmp_path):
    # The confirmation's own figure: the search reading that picked each config is left
    # out (it is the lucky one), so the advice and the Confirmation section agree.
    from hptune.study import Confirm
    from tests.study._execution_jobs import CONFIRM_BUDGET, lucky

    study = create_study(
        {"x": choice("a", "b", "c", "d", "e")}, name="c", storage=sqlite_url(tmp_path),
        strategy="random", pruner="none", direction="maximize", seed=3,
    )  # fmt: skip
    study.optimize(lucky, max_total_trials=CONFIRM_BUDGET, confirm=Confirm(top=3, seeds=2))
    confirmation = study.confirmation
    (noise,) = [a for a in advise(study) if a.kind == "noise"]
    assert noise.message == (
        f"fresh-seed re-trainings of the top 3 configs vary by ±{fmt(confirmation.noise)} "
        "(pooled sd of 6 readings): differences smaller than that are noise."
    )
    assert noise.evidence["pooled_sd"] == confirmation.noise
    assert [g["trial"] for g in noise.evidence["groups"]] == [c.trial for c in confirmation.configs]


def test_boundary_counts_a_config_trained_again_once(tmp_path):
    # lr 0.1 (the upper bound) was trained three times, 0.01 and 0.001 once: three trials
    # crowd the bound, but one config does, and two others sit inside.
    study = create_study(
        {"lr": choice(0.1, 0.01, 0.001, 0.0001)}, name="b", storage=sqlite_url(tmp_path),
        strategy="random", seed=0, direction="maximize",
    )  # fmt: skip
    study.optuna_study.enqueue_trial({"lr": 0.1}, skip_if_exists=False)
    for lr in (0.1, 0.1, 0.01, 0.001, 0.0001):
        study.optuna_study.enqueue_trial({"lr": lr}, skip_if_exists=False)
    scripted = {0: 0.95, 1: 0.94, 2: 0.93, 3: 0.90, 4: 0.80, 5: 0.70}
    study.optimize(lambda c, t: scripted[t.number], n_trials=6)
    assert [a for a in advise(study) if a.kind == "boundary"] == []


def test_no_repeats_no_noise_advice(tmp_path):
    study = _grid_study(tmp_path, {"lr": choice(0.01, 0.1, 0.2)}, lambda c, t: 1.0)
    assert advise(study) == []


# -- edge cases and arguments ---------------------------------------------------------------


def test_advice_on_empty_all_failed_and_pruned_studies(tmp_path):
    empty = create_study(
        {"x": uniform(0, 1)}, name="e", storage=sqlite_url(tmp_path), seed=0, direction="maximize"
    )
    assert advise(empty) == []

    def fail(config, trial):
        raise RuntimeError("no GPU")

    failed = _grid_study(tmp_path, {"x": uniform(0, 1, grid=[0.1, 0.2])}, fail, name="f")
    assert [a.message for a in advise(failed)] == [
        "2 of 2 trials failed: 2 × 'RuntimeError: no GPU'."
    ]

    def prune(config, trial):
        trial.report(1, config["x"])
        raise TrialPruned("stop")

    pruned = _grid_study(tmp_path, {"x": uniform(0, 1, grid=[0.9, 0.95, 1.0])}, prune, name="p")
    assert advise(pruned) == []  # pruned values are not evidence of a boundary


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"margin": 0.0}, "advise: margin must be a number in (0, 0.5], got 0.0."),
        ({"margin": 0.7}, "advise: margin must be a number in (0, 0.5], got 0.7."),
        ({"top_fraction": True}, "advise: top_fraction must be a number in (0, 1.0], got True."),
        (
            {"failure_fraction": "x"},
            "advise: failure_fraction must be a number in (0, 1.0], got 'x'.",
        ),
        ({"min_region": 0}, "advise: min_region must be an int >= 1, got 0."),
    ],
)
def test_bad_arguments_are_refused(tmp_path, kwargs, message):
    study = create_study(
        {"x": uniform(0, 1)}, name="a", storage=sqlite_url(tmp_path), seed=0, direction="maximize"
    )
    with pytest.raises(ConfigError, match=re.escape(message)):
        advise(study, **kwargs)


def test_advise_wants_an_hptune_study(tmp_path):
    import optuna

    with pytest.raises(HptuneError, match=r"the report needs an hptune Study, got Study"):
        advise(optuna.create_study())


def _choice_study(peak):
    from hptune.study import create_study

    study = create_study(
        {
            "lr": [0.001, 0.01, 0.1],
            "batch_size": [32, 64, 128, 256],
            "act": ["relu", "gelu", "tanh"],
        },
        storage=None,
        strategy="grid",
        seed=0,
        direction="maximize",
    )
    study.optimize(
        lambda c, t: -abs(math.log10(c["lr"]) - math.log10(peak)) - c["batch_size"] / 1e4
    )
    return study


def test_edge_of_a_numeric_choice_is_advised_and_silent_inside():
    messages = [a.message for a in advise(_choice_study(peak=1.0)) if a.kind == "boundary"]
    # lr: all 4 best chose 0.1. batch_size: the best 4 include 64 too, so no advice.
    assert messages == [
        "extend lr's choices above 0.1: the best 4 trials all chose its largest value, so the "
        "optimum may lie beyond it."
    ]
    inside = [a.message for a in advise(_choice_study(peak=0.01)) if "lr" in a.message]
    assert inside == []


def test_failure_groups_mask_numbers_and_put_the_largest_group_first():
    from hptune.report._advice import failure_groups
    from hptune.study import TrialRecord

    def failed(number, reason):
        return TrialRecord(
            number=number, state="FAILED", value=None, config={}, failure_reason=reason
        )

    trials = [
        failed(0, "RuntimeError: worker killed"),
        failed(1, "TrialDiverged: loss 96.2 at epoch 1"),
        TrialRecord(number=2, state="COMPLETE", value=0.5, config={}),
        failed(3, "TrialDiverged: loss 2611 at epoch 3"),
    ]
    groups = failure_groups(trials)
    assert [(reason, [t.number for t in g]) for reason, g in groups] == [
        ("TrialDiverged: loss 96.2 at epoch 1", [1, 3]),
        ("RuntimeError: worker killed", [0]),
    ]
