"""The multi-fidelity strategy: it learns (beats random search at equal epochs on a curve
with a known optimum), follows its priors, checks its options, and works with the study's
machinery (resume, two worker processes)."""

from __future__ import annotations

import math
import re
import statistics

import pytest
from optuna.trial import FrozenTrial, TrialState, create_trial

from hptune.exceptions import ConfigError
from hptune.space import Space, choice, loguniform, randint, uniform
from hptune.study import create_strategy, create_study, load_study
from hptune.study.strategies._multi_fidelity import MultiFidelitySampler, model_step, rung_view

SPACE = {
    "lr": loguniform(1e-5, 1.0),
    "weight_decay": loguniform(1e-7, 1e-1),
    "momentum": uniform(0.0, 0.99),
}
EPOCHS = 27
#: A learning rate shared by two optimizers.
OPTIMIZER_SPACE = {
    "lr": loguniform(1e-5, 1.0),
    "optimizer": choice({"adam": {}, "sgd": {"momentum": uniform(0.0, 0.99)}}),
}


def _curve(config, trial):
    """Accuracy-like learning curves whose ceiling is a narrow bump at lr=3e-3, wd=1e-4,
    momentum=0.6 (log scale for lr and wd; the optimum, 1, is reached by no curve), and
    whose speed grows with lr, so early epochs rank configs only roughly."""
    d2 = ((math.log10(config["lr"]) - math.log10(3e-3)) / 0.4) ** 2
    d2 += ((math.log10(config["weight_decay"]) + 4) / 0.8) ** 2
    d2 += ((config["momentum"] - 0.6) / 0.2) ** 2
    ceiling = math.exp(-0.5 * d2)
    tau = 2.0 + 4.0 / (1.0 + 100 * config["lr"])
    value = 0.0
    for epoch in range(1, EPOCHS + 1):
        value = ceiling * (1 - math.exp(-epoch / tau))
        trial.report(epoch, value)
    return value


def _best_within(study, budget):
    """The best value reported within the study's first ``budget`` epochs (trial order)."""
    spent, best = 0, 0.0
    for t in sorted(study.trials, key=lambda t: t.number):
        for _step, value in sorted(t.intermediate_values.items()):
            if spent == budget:
                return best
            spent += 1
            best = max(best, value)
    return best


def _median_best(strategy, options, budget=20 * EPOCHS, seeds=range(5)):
    best = []
    for seed in seeds:
        study = create_study(
            SPACE, storage=None, strategy=strategy, pruner="asha", epochs=EPOCHS, seed=seed,
            direction="maximize", strategy_options=options,
        )  # fmt: skip
        study.optimize(_curve, n_trials=150)  # more epochs than the budget: cut below
        best.append(_best_within(study, budget))
    return statistics.median(best)


def test_learns_beyond_random_search_at_equal_epochs():
    # Field priors off: the learning is the model's and the local draws', not a lucky prior
    # (the field's SGD learning rate, 0.03, is a decade off this optimum).
    random_best = _median_best("random", {})
    learned = _median_best("multi-fidelity", {"field_priors": False})
    assert random_best < 0.85  # the bump is narrow: chance does not find its top
    assert learned > random_best + 0.08


def test_first_draws_follow_the_priors():
    study = create_study(
        {"lr": loguniform(1e-5, 1.0), "weight_decay": loguniform(1e-7, 1e-1)},
        storage=None, strategy="multi-fidelity", seed=0, direction="maximize",
        strategy_options={"priors": {"weight_decay": {"mode": 1e-6, "width": 0.3}},
                          "uniform_share": 0.0, "prior_trials": 1e6},
    )  # fmt: skip
    study.optimize(lambda c, t: 0.0, n_trials=20)
    lrs = [math.log10(t.config["lr"]) for t in study.trials]
    wds = [math.log10(t.config["weight_decay"]) for t in study.trials]
    # No optimizer choice and no momentum: the lr prior is 3e-3 with 1.5 decades.
    assert abs(statistics.median(lrs) - math.log10(3e-3)) < 0.8
    assert abs(statistics.median(wds) + 6) < 0.3  # the user's prior wins


def test_the_first_trial_is_the_priors_modes():
    space = {
        "lr": loguniform(1e-5, 1.0),
        "momentum": uniform(0.0, 0.99),
        "batch_size": choice(16, 32, 64, 128),
        "weight_decay": loguniform(1e-7, 1e-1),
        "units": randint(8, 512),  # no prior: drawn uniformly
    }
    first = []
    for options in ({}, {"priors": {"weight_decay": 1e-5}}, {"start_at_prior": False}):
        study = create_study(
            space, storage=None, strategy="multi-fidelity", seed=3, direction="maximize",
            strategy_options=options,
        )  # fmt: skip
        study.optimize(lambda c, t: 0.0, n_trials=2)
        first.append(study.trials[0].config)
    # A momentum and no optimizer choice: SGD's learning rate, 0.03.
    assert {k: first[0][k] for k in ("lr", "momentum", "batch_size", "weight_decay")} == {
        "lr": pytest.approx(0.03), "momentum": pytest.approx(0.9), "batch_size": 32,
        "weight_decay": pytest.approx(3e-4),
    }  # fmt: skip
    assert first[1]["weight_decay"] == pytest.approx(1e-5)  # the user's prior wins
    assert first[2]["lr"] != pytest.approx(0.03)
    assert first[2]["momentum"] != pytest.approx(0.9)


def test_options_are_checked():
    with pytest.raises(
        ConfigError,
        match=re.escape("strategy 'multi-fidelity': uniform_share must be a number in [0, 1)"),
    ):
        create_strategy("multi-fidelity", uniform_share=1.0)
    with pytest.raises(ConfigError, match="strategy 'multi-fidelity': priors must be a mapping"):
        create_strategy("multi-fidelity", priors={"lr": {"mode": 1e-3, "scale": "cubic"}})
    with pytest.raises(ConfigError, match="strategy 'multi-fidelity': priors must be a mapping"):
        create_strategy("multi-fidelity", priors={"weight_decay": 0.0})  # 0 on a log prior
    with pytest.raises(ConfigError, match="min_points_in_model must be an int >= 2 or None"):
        create_strategy("multi-fidelity", min_points_in_model=1)
    with pytest.raises(ConfigError, match="strategy 'multi-fidelity': priors must be a mapping"):
        create_strategy("multi-fidelity", priors={"lr": {"mode": 1e-3, "adam": 1e-3}})  # mixed


@pytest.mark.parametrize(
    ("priors", "message"),
    [
        ({"lrr": 1e-3}, "priors names 'lrr', which is not a numeric parameter of the space"),
        ({"lr": 5.0}, "the prior of 'lr' has its mode at 5, outside the parameter's range"),
        (
            {"lr": {"adam": 1e-3, "adamw": 1e-3}},
            "the prior of 'lr' for 'adamw' names an optimizer the space's optimizer choice "
            "lacks (its optimizers: adam, sgd)",
        ),
        ({"lr": {"sgd": 3.0}}, "the prior of 'lr' for 'sgd' has its mode at 3, outside"),
    ],
)
def test_a_prior_the_space_cannot_use_is_refused_when_the_study_is_built(priors, message):
    """A typo in a prior's name or a mode beyond the range would otherwise be dropped or
    clipped silently."""
    with pytest.raises(ConfigError, match=re.escape(message)):
        create_study(
            OPTIMIZER_SPACE, storage=None, strategy="multi-fidelity", pruner="asha",
            epochs=EPOCHS, seed=0, direction="maximize", strategy_options={"priors": priors},
        )  # fmt: skip


def test_a_learning_rate_shared_by_two_optimizers_takes_a_prior_for_each():
    priors = {"lr": {"adam": 2e-3, "sgd": {"mode": 0.2, "width": 0.1}}}
    first = {}
    for seed in range(12):  # until the first trial has drawn each optimizer
        study = create_study(
            OPTIMIZER_SPACE, storage=None, strategy="multi-fidelity", seed=seed,
            direction="maximize", strategy_options={"priors": priors},
        )  # fmt: skip
        study.optimize(lambda c, t: 0.0, n_trials=1)
        config = study.trials[0].config
        first[config["optimizer"]["name"]] = config["lr"]
    assert first == {"adam": pytest.approx(2e-3), "sgd": pytest.approx(0.2)}
    # An optimizer left out keeps the field's prior (Adam: 1e-3).
    study = create_study(
        OPTIMIZER_SPACE, storage=None, strategy="multi-fidelity", seed=0, direction="maximize",
        strategy_options={"priors": {"lr": {"sgd": 0.2}}, "uniform_share": 0.0,
                          "prior_trials": 1e6},
    )  # fmt: skip
    study.optimize(lambda c, t: 0.0, n_trials=40)
    adam = [
        math.log10(t.config["lr"]) for t in study.trials if t.config["optimizer"]["name"] == "adam"
    ]
    sgd = [
        math.log10(t.config["lr"]) for t in study.trials if t.config["optimizer"]["name"] == "sgd"
    ]
    assert abs(statistics.median(adam) + 3) < 0.5
    assert abs(statistics.median(sgd) - math.log10(0.2)) < 0.5


def _trial(number, state, values, value=None):
    return create_trial(
        state=state,
        value=value,
        params={"x": 0.1 * number},
        distributions={"x": uniform(0, 1).distribution()},
        intermediate_values=values,
    )


def test_the_model_sees_the_highest_step_with_enough_trials():
    trials = [
        _trial(0, TrialState.COMPLETE, {1: 0.1, 3: 0.3, 9: 0.5}, 0.5),
        _trial(1, TrialState.PRUNED, {1: 0.2, 3: 0.4}),
        _trial(2, TrialState.PRUNED, {1: 0.3}),
        _trial(3, TrialState.COMPLETE, {}, 0.0),  # a failure, shown complete and worst
    ]
    for number, t in enumerate(trials):
        t.number = number
    assert model_step(trials, 2) == 3 and model_step(trials, 4) is None
    view = rung_view(trials, 3)
    shown = {t.number: (t.state, t.value) for t in view}
    assert shown == {
        0: (TrialState.COMPLETE, 0.3),
        1: (TrialState.COMPLETE, 0.4),
        2: (TrialState.PRUNED, None),
        3: (TrialState.COMPLETE, 0.0),
    }
    assert all(isinstance(t, FrozenTrial) for t in view)
    # Capped: the pruned trial that stopped earliest goes first.
    assert [t.number for t in rung_view(trials, 3, max_trials=3)] == [0, 1, 3]
    assert [t.number for t in rung_view(trials, 3, max_trials=4)] == [0, 1, 2, 3]


def test_a_prior_the_evidence_contradicts_is_dropped():
    # The prior says lr near 1e-5 (0.3 decades wide), the objective prefers lr near 0.5.
    # Prior draws alone would stay near 1e-5 (prior_trials huge, no local draws: 80 % of
    # draws); uniform draws find better trials far from it, and the prior is dropped.
    late = []
    for seed in range(3):
        study = create_study(
            {"lr": loguniform(1e-6, 1.0), "momentum": uniform(0.0, 1.0)},
            storage=None, strategy="multi-fidelity", seed=seed, direction="maximize",
            strategy_options={"priors": {"lr": {"mode": 1e-5, "width": 0.3}},
                              "prior_trials": 1e6, "local_share": 0.0},
        )  # fmt: skip
        study.optimize(lambda c, t: -((math.log10(c["lr"]) + 0.3) ** 2), n_trials=40)
        near_prior = [t.config["lr"] < 1e-4 for t in study.trials]
        assert near_prior[0]  # the first draw follows the prior
        late.append(sum(near_prior[20:]))
    assert statistics.median(late) <= 5  # of 20; uniform draws alone put a third there


def test_distance_from_the_priors_is_capped():
    sampler = MultiFidelitySampler(
        0, priors={}, field_priors=True, uniform_share=0.2, local_share=0.3,
        prior_trials=10, min_points_in_model=None,
    )  # fmt: skip
    space = Space({"lr": loguniform(1e-4, 1.0), "weight_decay": uniform(0.0, 0.01)})
    sampler.configure(list(space.dimensions()), epochs=None)
    # No optimizer choice, no momentum: lr's prior is 3e-3 (1.5 decades); wd's 3e-4.
    assert sampler._prior_distance({"lr": 3e-3, "weight_decay": 3e-4}) == pytest.approx(0)
    far = sampler._prior_distance({"lr": 3e-3, "weight_decay": 0.0})  # log10(0): capped
    assert far == pytest.approx(math.sqrt(9 / 2))


def test_resume_continues_the_study(tmp_path):
    url = f"sqlite:///{tmp_path / 'mf.db'}"
    options = {"prior_trials": 2.0}
    study = create_study(
        SPACE, name="mf", storage=url, strategy="multi-fidelity", pruner="asha",
        epochs=EPOCHS, seed=3, direction="maximize", strategy_options=options,
    )  # fmt: skip
    study.optimize(_curve, n_trials=15)
    again = load_study("mf", url)
    assert type(again.strategy).__name__ == "MultiFidelityStrategy"
    assert again.strategy.options == options
    again.optimize(_curve, n_trials=10)
    trials = load_study("mf", url).trials
    assert [t.number for t in trials] == list(range(25))
    assert {t.state for t in trials} <= {"COMPLETE", "PRUNED"}
    assert len({t.config_hash for t in trials}) == 25
    assert {t.stage for t in trials} == {"multi-fidelity"}


def _quick_curve(config, trial):
    """Module-level so that spawned workers can import it."""
    for epoch in range(1, 4):
        trial.report(epoch, epoch * config["lr"])
    return 3 * config["lr"]


@pytest.mark.slow
def test_two_worker_processes(tmp_path):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    study = create_study(
        {"lr": loguniform(1e-4, 1e-1)}, name="p", storage=url, strategy="multi-fidelity",
        pruner="asha", epochs=3, seed=0, direction="maximize",
    )  # fmt: skip
    study.optimize(_quick_curve, n_trials=8, n_workers=2)
    trials = load_study("p", url).trials
    assert [t.number for t in trials] == list(range(8))
    assert all(t.state in ("COMPLETE", "PRUNED") for t in trials)
    assert len({t.config_hash for t in trials}) == 8
