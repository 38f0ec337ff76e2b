"""Strategy and pruner registries: names, derived options, pinned errors, and every
registered strategy run on a tiny conditional problem."""

from __future__ import annotations

import math
import re

import optuna
import pytest

from hptune.exceptions import ConfigError
from hptune.space import choice, loguniform, randint, uniform
from hptune.study import (
    Strategy,
    create_pruner,
    create_strategy,
    create_study,
    list_pruners,
    list_strategies,
    register_strategy,
)
from hptune.study.pruners import warmup_epochs

SPACE = {
    "lr": loguniform(1e-4, 1e-1),
    "width": randint(1, 4),
    "optimizer": choice(
        {"adam": {"beta1": uniform(0.85, 0.95)}, "sgd": {"momentum": uniform(0.0, 0.9)}}
    ),
}


def test_names():
    assert list_strategies()[:7] == [
        "grid",
        "random",
        "sobol",
        "tpe",
        "cmaes",
        "gp",
        "coarse-to-fine",
    ]
    assert list_pruners() == ["asha", "hyperband", "median", "none"]


@pytest.mark.parametrize("name", list_strategies())
def test_every_strategy_runs_a_conditional_space(name):
    options = {"n_points": 2} if name == "grid" else {}
    study = create_study(
        SPACE, storage=None, strategy=name, seed=0, direction="minimize", strategy_options=options
    )
    study.optimize(lambda c, t: abs(math.log10(c["lr"]) + 2) + c["width"], n_trials=12)
    trials = [t for t in study.trials if t.state != "WAITING"]  # the rest of the grid waits
    assert len(trials) == 12 and all(t.state == "COMPLETE" for t in trials)
    for t in trials:
        assert 1e-4 <= t.config["lr"] <= 1e-1 and t.config["width"] in (1, 2, 3, 4)
        branch = t.config["optimizer"]["name"]
        assert set(t.config["optimizer"]) == {"name", "beta1" if branch == "adam" else "momentum"}
    assert len({t.config_hash for t in trials}) == 12  # no repeats


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        # Optuna's Hyperband takes these, then every trial fails (a division by zero).
        ("hyperband", {"reduction_factor": 1}, "reduction_factor must be an int >= 2, got 1."),
        ("hyperband", {"reduction_factor": 1.5}, "reduction_factor must be an int >= 2, got 1.5."),
        (
            "asha",
            {"reduction_factor": "three"},
            "reduction_factor must be an int >= 2, got 'three'.",
        ),
        ("median", {"n_warmup_steps": "x"}, "n_warmup_steps must be an int >= 0, got 'x'."),
        ("hyperband", {"min_resource": 0}, "min_resource must be an int >= 1 or 'auto', got 0."),
    ],
)
def test_a_bad_pruner_option_is_refused_when_the_pruner_is_made(name, options, message):
    with pytest.raises(ConfigError, match=re.escape(f"pruner {name!r}: {message}")):
        create_pruner(name, epochs=20, **options)


def test_unknown_names_and_options():
    with pytest.raises(
        ConfigError,
        match=re.escape(
            "unknown strategy 'tpee'; valid: grid, random, sobol, tpe, cmaes, gp, coarse-to-fine"
        ),
    ):
        create_strategy("tpee")
    with pytest.raises(
        ConfigError,
        match=re.escape(
            "strategy 'tpe' got unknown option 'n_startup'; valid: n_startup_trials, n_ei_candidates."
        ),
    ):
        create_strategy("tpe", n_startup=3)
    with pytest.raises(
        ConfigError, match=re.escape("unknown pruner 'ahsa'; valid: asha, hyperband, median, none.")
    ):
        create_pruner("ahsa")
    with pytest.raises(
        ConfigError,
        match=re.escape(
            "pruner 'asha' got unknown option 'eta'; valid: min_resource, reduction_factor"
        ),
    ):
        create_pruner("asha", eta=3)
    with pytest.raises(
        ConfigError,
        match=re.escape(
            "pruner 'median': epochs must be an int >= 1 or None, got 0; None when unknown."
        ),
    ):
        create_pruner("median", epochs=0)
    with pytest.raises(
        ConfigError, match=re.escape("pruner 'asha': reduction_factor must be an int >= 2, got 1.")
    ):
        create_pruner("asha", reduction_factor=1)
    with pytest.raises(
        ConfigError,
        match=re.escape(
            "strategy 'coarse-to-fine': coarse_share must be a number in [0, 1], got 1.5."
        ),
    ):
        create_strategy("coarse-to-fine", coarse_share=1.5)
    with pytest.raises(
        ConfigError,
        match=re.escape(
            "strategy 'coarse-to-fine': coarse must be one of 'sobol', 'random', got 'tpe'."
        ),
    ):
        create_strategy("coarse-to-fine", coarse="tpe")


def test_pruner_options_derived_from_epochs():
    asha = create_pruner("asha", epochs=20)
    assert isinstance(asha, optuna.pruners.SuccessiveHalvingPruner)
    assert (asha._min_resource, asha._reduction_factor) == (2, 3)  # (20 - 1) // 3**2
    assert create_pruner("asha")._min_resource is None  # "auto": Optuna estimates it
    assert create_pruner("asha", epochs=28)._min_resource == 3  # rungs 3, 9, 27 < 28
    hb = create_pruner("hyperband", epochs=27)
    assert (hb._min_resource, hb._max_resource, hb._reduction_factor) == (2, 27, 3)
    assert create_pruner("hyperband", epochs=27, min_resource=1)._min_resource == 1
    median = create_pruner("median", epochs=20)
    assert (median._n_startup_trials, median._n_warmup_steps) == (5, 5)
    assert isinstance(create_pruner("none"), optuna.pruners.NopPruner)


def test_a_registered_strategy_is_usable_by_name():
    class FixedLR(Strategy):
        name = "test-random-copy"

        def create_sampler(self, seed, n_existing_trials):
            return optuna.samplers.RandomSampler(seed=seed)

    register_strategy("test-random-copy", FixedLR)
    try:
        study = create_study(
            {"x": uniform(0, 1)},
            storage=None,
            strategy="test-random-copy",
            seed=1,
            direction="maximize",
        )
        study.optimize(lambda c, t: c["x"], n_trials=2)
        assert [t.stage for t in study.trials] == ["test-random-copy"] * 2
    finally:
        from hptune.study.strategies import _base

        _base._REGISTRY.pop("test-random-copy")


@pytest.mark.parametrize("pruner", ["median", "asha", "hyperband"])
@pytest.mark.parametrize("epochs", [1, 3, 9])
def test_no_trial_is_pruned_at_its_last_epoch(pruner, epochs):
    # Values fall with the trial number, so every later trial is the worst so far: a pruner
    # that judged the last epoch would prune some of them there.
    study = create_study(
        {"x": uniform(0, 1)}, storage=None, strategy="random", seed=0, pruner=pruner,
        epochs=epochs, pruner_options={"n_startup_trials": 1} if pruner == "median" else None,
     direction="maximize",)  # fmt: skip

    def objective(config, trial):
        for epoch in range(1, epochs + 1):
            trial.report(epoch, -trial.number - epoch / 10)
        return -trial.number

    study.optimize(objective, n_trials=30)
    pruned_at = [max(t.intermediate_values) for t in study.trials if t.state == "PRUNED"]
    assert all(step < epochs for step in pruned_at)
    if epochs > 1:
        assert pruned_at  # it does prune, before the end


@pytest.mark.parametrize("pruner", ["median", "asha", "hyperband"])
def test_no_trial_is_pruned_while_its_lr_warms_up(pruner):
    # A trial with a searched warmup reports far worse values while it warms up, then the
    # best so far: judged during warmup such trials would be pruned at the first rung
    # (ASHA, Hyperband at epoch 2) or at the first judged step (median). Later trials
    # without warmup are worse than earlier ones, so the pruner has some to prune.
    space = {"x": uniform(0, 1), "sched": {"warmup_epochs": choice(0, 4)}}
    study = create_study(
        space, storage=None, strategy="random", seed=0, pruner=pruner, epochs=20,
        pruner_options={"n_startup_trials": 1, "n_warmup_steps": 0} if pruner == "median" else None,
        direction="maximize",
    )  # fmt: skip

    def objective(config, trial):
        warmup = config["sched"]["warmup_epochs"]
        for epoch in range(1, 21):
            if not warmup:
                value = epoch / 100 - trial.number / 1000
            else:
                value = -10.0 if epoch <= warmup else 1.0 + epoch / 100 + trial.number / 1000
            trial.report(epoch, value)
        return value

    study.optimize(objective, n_trials=40)
    trials = study.optuna_study.trials
    warm = [t for t in trials if t.params["sched.warmup_epochs"] == 4]
    assert warm and all(t.state.name == "COMPLETE" for t in warm)
    cold = [t for t in trials if t.params["sched.warmup_epochs"] == 0]
    assert any(t.state.name == "PRUNED" for t in cold)  # the pruner does prune
    assert warmup_epochs({"a.warmup_epochs": 2, "lr": 0.1}) == 2.0
    assert warmup_epochs({"warmup": 2}) is None
