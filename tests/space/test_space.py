"""Space: sampling through real Optuna studies, grids counted by hand, flatten/enqueue,
JSON records and fingerprints, and errors that name the parameter path."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import warnings

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from scipy import stats

from hptune.exceptions import ConfigError
from hptune.space import Space, choice, loguniform, randint, uniform

optuna.logging.set_verbosity(optuna.logging.WARNING)

YAML_SPACE = {  # the space of DESIGN.md's YAML contract, as yaml.safe_load gives it
    "lr": "loguniform(1e-4, 1e-1)",
    "batch_size": "choice(32, 64, 128, 256)",
    "weight_decay": "loguniform(1e-6, 1e-2)",
    "warmup_epochs": "randint(0, 5)",
    "optimizer": {
        "choice": {
            "adam": {"beta1": "uniform(0.85, 0.95)"},
            "sgd": {"momentum": "uniform(0.8, 0.99)", "nesterov": "choice(true, false)"},
        }
    },
    "scheduler": {
        "choice": {
            "cosine": {},
            "plateau": {"factor": "choice(0.1, 0.5)", "patience": "randint(2, 8)"},
        }
    },
}

PYTHON_SPACE = {
    "lr": loguniform(1e-4, 1e-1),
    "batch_size": choice(32, 64, 128, 256),
    "weight_decay": loguniform(1e-6, 1e-2),
    "warmup_epochs": randint(0, 5),
    "optimizer": choice(
        {
            "adam": {"beta1": uniform(0.85, 0.95)},
            "sgd": {"momentum": uniform(0.8, 0.99), "nesterov": choice(True, False)},
        }
    ),
    "scheduler": choice(
        {"cosine": {}, "plateau": {"factor": [0.1, 0.5], "patience": randint(2, 8)}}
    ),
}


def small_space() -> Space:
    """3 lr values x (adam + 2*2 sgd = 5 optimizers) x (cosine + 2*3 plateau = 7) = 105."""
    return Space(
        {
            "lr": loguniform(1e-3, 1e-1, n_grid=3),
            "optimizer": choice(
                {"adam": {}, "sgd": {"momentum": [0.0, 0.9], "nesterov": choice(True, False)}}
            ),
            "scheduler": choice(
                {"cosine": {}, "plateau": {"factor": [0.1, 0.5], "patience": randint(2, 4)}}
            ),
            "epochs": 10,
        }
    )


def random_study(seed: int = 0, storage: str | None = None) -> optuna.Study:
    return optuna.create_study(storage=storage, sampler=optuna.samplers.RandomSampler(seed=seed))


def test_yaml_and_python_forms_build_the_same_space():
    assert Space(YAML_SPACE) == Space(PYTHON_SPACE)
    assert Space(YAML_SPACE).fingerprint() == Space(PYTHON_SPACE).fingerprint()


def test_grid_is_exactly_the_cartesian_product_with_branches():
    expected = []
    for lr in (0.001, 0.01, 0.1):
        optimizers = [{"name": "adam"}] + [
            {"name": "sgd", "momentum": m, "nesterov": n} for m in (0.0, 0.9) for n in (True, False)
        ]
        schedulers = [{"name": "cosine"}] + [
            {"name": "plateau", "factor": f, "patience": p} for f in (0.1, 0.5) for p in (2, 3, 4)
        ]
        for opt in optimizers:
            for sched in schedulers:
                expected.append({"lr": lr, "optimizer": opt, "scheduler": sched, "epochs": 10})
    grid = small_space().grid()
    assert len(expected) == 3 * 5 * 7 == 105
    assert grid == expected  # same points, same order
    assert len({json.dumps(p, sort_keys=True) for p in grid}) == 105  # each point once
    assert small_space().grid_size() == 105


def test_grid_points_are_independent_dicts():
    grid = small_space().grid()
    grid[0]["optimizer"]["name"] = "changed"
    assert grid[5]["optimizer"] == {"name": "adam"}


def test_grid_n_points_is_global_and_per_dimension_settings_win():
    space = Space({"a": uniform(0, 1), "b": uniform(0, 1, n_grid=2), "c": "relu"})
    assert space.grid(n_points=3) == [
        {"a": a, "b": b, "c": "relu"} for a in (0.0, 0.5, 1.0) for b in (0.0, 1.0)
    ]
    assert space.grid_size() == 5 * 2 == len(space.grid())
    assert Space({}).grid() == [{}]


def test_seed_param_grid_is_a_valid_space():
    param_grid = {"lr": [0.1, 0.01, 0.001], "batch_size": [32, 64, 128]}
    grid = Space(param_grid).grid()
    assert len(grid) == 9 and grid[1] == {"lr": 0.1, "batch_size": 64}


def test_sample_uses_stable_dotted_names_and_only_the_chosen_branch():
    space = Space({**YAML_SPACE, "model": {"width": randint(16, 64), "act": "relu"}, "epochs": 3})
    study = random_study()
    for _ in range(30):
        trial = study.ask()
        config = space.sample(trial)
        branch = config["optimizer"]["name"]
        assert trial.params["optimizer"] == branch
        assert {k for k in trial.params if k.startswith("optimizer.")} == {
            f"optimizer.{branch}.{key}" for key in config["optimizer"] if key != "name"
        }
        assert trial.params["model.width"] == config["model"]["width"]
        assert config["model"]["act"] == "relu" and config["epochs"] == 3
        assert "epochs" not in trial.params and "model.act" not in trial.params
        if config["scheduler"]["name"] == "cosine":
            assert config["scheduler"] == {"name": "cosine"}


def test_sampling_is_deterministic_with_a_seeded_sampler():
    space = Space(YAML_SPACE)

    def draw(seed):
        study = random_study(seed)
        return [space.sample(study.ask()) for _ in range(20)]

    assert draw(0) == draw(0)
    assert draw(0) != draw(1)


def test_loguniform_samples_are_uniform_in_log_space():
    def log10_draws(dim):
        space, study = Space({"lr": dim}), random_study(seed=0)
        return [math.log10(space.sample(study.ask())["lr"]) for _ in range(2000)]

    uniform_in_log = stats.uniform(loc=-4, scale=3).cdf  # log10 of [1e-4, 1e-1]
    assert stats.kstest(log10_draws(loguniform(1e-4, 1e-1)), uniform_in_log).pvalue > 0.01
    # The same test rejects the seed's linear sampling, so it can fail.
    assert stats.kstest(log10_draws(uniform(1e-4, 1e-1)), uniform_in_log).pvalue < 1e-6


def test_randint_hits_both_bounds():
    space, study = Space({"k": randint(0, 5), "w": randint(1, 4, log=True)}), random_study()
    draws = [space.sample(study.ask()) for _ in range(300)]
    assert {d["k"] for d in draws} == {0, 1, 2, 3, 4, 5}
    assert {d["w"] for d in draws} == {1, 2, 3, 4}
    assert all(type(d["k"]) is int for d in draws)


def test_every_grid_point_survives_enqueue_ask_sample():
    space, study = small_space(), random_study()
    grid = space.grid()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Optuna warns when a fixed param is out of range
        for point in grid:
            study.enqueue_trial(space.flatten(point))
        assert [space.sample(study.ask()) for _ in grid] == grid


def test_mixed_type_choices_round_trip_through_sqlite(tmp_path):
    storage = f"sqlite:///{tmp_path / 'space.db'}"
    space = Space({"x": choice(None, 2, 2.5, "a", False), "opt": choice({"adam": {}, "sgd": {}})})
    study = random_study(storage=storage)
    grid = space.grid()
    assert len(grid) == 10
    for point in grid:
        study.enqueue_trial(space.flatten(point))
    seen = [space.sample(study.ask()) for _ in grid]
    assert seen == grid
    reloaded = optuna.load_study(study_name=study.study_name, storage=storage)
    assert [t.params["x"] for t in reloaded.trials] == [p["x"] for p in grid]


def test_flatten_names_the_params():
    config = {
        "lr": 0.01,
        "optimizer": {"name": "sgd", "momentum": 0.9, "nesterov": True},
        "scheduler": {"name": "cosine"},
        "epochs": 10,
    }
    assert small_space().flatten(config) == {
        "lr": 0.01,
        "optimizer": "sgd",
        "optimizer.sgd.momentum": 0.9,
        "optimizer.sgd.nesterov": True,
        "scheduler": "cosine",
    }


GOOD = {"lr": 0.01, "optimizer": {"name": "adam"}, "scheduler": {"name": "cosine"}, "epochs": 10}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"lr": 0.5},
            "config does not belong to the space: lr: 0.5 is not in loguniform(0.001, 0.1, n_grid=3).",
        ),
        ({"lr": "0.01"}, "lr: '0.01' is not in loguniform"),
        ({"epochs": 11}, "epochs: the space fixes it to 10, got 11."),
        (
            {"extra": 1},
            "config: unexpected keys ['extra']; the space has ['lr', 'optimizer', 'scheduler', 'epochs'].",
        ),
        (
            {"optimizer": "adam"},
            "optimizer: expected {'name': <one of ['adam', 'sgd']>, ...}, got 'adam'.",
        ),
        ({"optimizer": {"name": "rmsprop"}}, "expected {'name': <one of ['adam', 'sgd']>, ...}"),
        (
            {"optimizer": {"name": "adam", "beta1": 0.9}},
            "optimizer.adam: unexpected keys ['beta1']",
        ),
        (
            {"optimizer": {"name": "sgd", "momentum": 0.9}},
            "optimizer.sgd.nesterov: missing from the config.",
        ),
        (
            {"optimizer": {"name": "sgd", "momentum": 0.5, "nesterov": True}},
            "optimizer.sgd.momentum: 0.5 is not in choice(0.0, 0.9).",
        ),
        (
            {"scheduler": {"name": "plateau", "factor": 0.1, "patience": 5}},
            "scheduler.plateau.patience: 5 is not in randint(2, 4).",
        ),
    ],
)
def test_flatten_refuses_configs_outside_the_space(change, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        small_space().flatten({**GOOD, **change})


def test_flatten_refuses_a_missing_key_and_a_non_mapping():
    with pytest.raises(ConfigError, match=re.escape("epochs: missing from the config.")):
        small_space().flatten({k: v for k, v in GOOD.items() if k != "epochs"})
    with pytest.raises(ConfigError, match=re.escape("config: expected a mapping, got [1].")):
        small_space().flatten([1])


def test_flatten_accepts_a_json_round_tripped_config_with_tuple_constants():
    space = Space({"betas": (0.9, 0.999), "wd": 0.0, "k": randint(0, 3)})
    config = json.loads(json.dumps({"betas": [0.9, 0.999], "wd": 0, "k": 2}))
    assert space.flatten(config) == {"k": 2}


def test_distributions_all_or_for_the_branches_a_config_chose():
    space = small_space()
    assert list(space.distributions()) == [
        "lr",
        "optimizer",
        "optimizer.sgd.momentum",
        "optimizer.sgd.nesterov",
        "scheduler",
        "scheduler.plateau.factor",
        "scheduler.plateau.patience",
    ]
    active = space.distributions(
        {**GOOD, "scheduler": {"name": "plateau", "factor": 0.5, "patience": 3}}
    )
    assert active == {
        "lr": FloatDistribution(1e-3, 1e-1, log=True),
        "optimizer": CategoricalDistribution(("adam", "sgd")),
        "scheduler": CategoricalDistribution(("cosine", "plateau")),
        "scheduler.plateau.factor": CategoricalDistribution((0.1, 0.5)),
        "scheduler.plateau.patience": IntDistribution(2, 4),
    }


def test_dimensions_lists_paths_with_bounds_for_coarse_to_fine():
    dims = dict(Space(YAML_SPACE).dimensions())
    assert (dims["lr"].low, dims["lr"].high, dims["lr"].log) == (1e-4, 1e-1, True)
    assert (dims["warmup_epochs"].low, dims["warmup_epochs"].high) == (0, 5)
    assert dims["optimizer.sgd.momentum"] == uniform(0.8, 0.99)


def test_narrow_returns_a_narrowed_copy():
    space = Space(YAML_SPACE)
    narrowed = space.narrow({"lr": (1e-3, 1e-2), "optimizer.sgd.momentum": (0.85, 0.95)})
    dims = dict(narrowed.dimensions())
    assert dims["lr"] == loguniform(1e-3, 1e-2)
    assert dims["optimizer.sgd.momentum"] == uniform(0.85, 0.95)
    assert dims["weight_decay"] == loguniform(1e-6, 1e-2)
    assert dict(space.dimensions())["lr"] == loguniform(1e-4, 1e-1)  # original untouched
    assert narrowed.fingerprint() != space.fingerprint()


def test_narrow_errors():
    space = Space(YAML_SPACE)
    with pytest.raises(
        ConfigError, match=re.escape("narrow: ['batch_size'] are not numeric parameters")
    ):
        space.narrow({"batch_size": (32, 64)})
    with pytest.raises(ConfigError, match=re.escape("inside the original bounds [0.0001, 0.1]")):
        space.narrow({"lr": (1e-5, 1e-2)})


def test_to_dict_is_json_and_round_trips():
    space = Space(
        {**PYTHON_SPACE, "act": "relu", "betas": (0.9, 0.999), "model": {"width": [64, 128]}}
    )
    data = json.loads(json.dumps(space.to_dict()))
    assert data["lr"] == "loguniform(0.0001, 0.1)"
    assert data["betas"] == {"constant": [0.9, 0.999]}
    assert data["scheduler"] == {
        "choice": {
            "cosine": {},
            "plateau": {"factor": "choice(0.1, 0.5)", "patience": "randint(2, 8)"},
        }
    }
    assert Space.from_dict(data) == space
    assert Space.from_dict(data).grid(n_points=1) == space.grid(n_points=1)


def test_equality_sees_order_and_constant_types():
    assert Space({"a": 1, "b": 2}) != Space({"b": 2, "a": 1})
    assert Space({"a": 1}) != Space({"a": 1.0}) != Space({"a": True})
    assert Space({"a": uniform(0, 1)}) == Space({"a": "uniform(0.0, 1)"})


def test_fingerprint_is_stable_across_processes_and_changes_with_bounds():
    code = (
        "import json, sys; from hptune.space import Space; "
        "print(Space(json.loads(sys.argv[1])).fingerprint())"
    )
    args = [sys.executable, "-c", code, json.dumps(YAML_SPACE)]
    other = subprocess.run(args, capture_output=True, text=True, check=True)
    fingerprint = Space(YAML_SPACE).fingerprint()
    assert other.stdout.strip() == fingerprint and len(fingerprint) == 64
    changed = {**YAML_SPACE, "lr": "loguniform(1e-4, 2e-1)"}
    assert Space(changed).fingerprint() != fingerprint
    assert Space({**YAML_SPACE, "epochs": 3}).fingerprint() != fingerprint


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        (
            {"optimizer": {"choice": {"sgd": {"momentum": "uniform(0.99, 0.8)"}}}},
            "space.optimizer.sgd.momentum: uniform(0.99, 0.8): low must be <= high",
        ),
        (
            {"lr": "loguniform(0, 1e-1)"},
            "space.lr: loguniform(0, 0.1): loguniform needs low > 0; use uniform(...) for ranges that include 0.",
        ),
        ({"bs": []}, "space.bs: choice(): needs at least one value"),
        ({"bs": "choice()"}, "space.bs: choice(): needs at least one value"),
        ({"k": "randint(0, 2.5)"}, "space.k: randint(0, 2.5): high must be an int, got 2.5"),
        ({"k": "uniform(0, inf)"}, "space.k: 'uniform(0, inf)': 'inf' is not a value"),
        ({"m": {"x": "uniform(0, 1e999)"}}, "space.m.x: uniform(0, inf): high must be finite"),
        (
            {"lr": "logunifrom(1, 2)"},
            "space.lr: 'logunifrom(1, 2)': unknown form 'logunifrom'; did you mean loguniform(...)?",
        ),
        (
            {"model.width": 64},
            "space: keys must be non-empty strings without '.', got 'model.width'",
        ),
        ({"model": {"a.b": 1}}, "space.model: keys must be non-empty strings without '.'"),
        ({1: 2}, "space: keys must be non-empty strings without '.', got 1"),
        (
            {"opt": {"choice": {1: {}}}},
            "space.opt: choice({...}): branch names must be non-empty strings",
        ),
        (
            {"opt": {"choice": {"sgd": {"name": "x"}}}},
            "space.opt: choice({...}): branch 'sgd' uses the key 'name'",
        ),
        (
            {"opt": {"choice": {}}},
            "space.opt: choice({...}): a conditional choice needs at least one branch",
        ),
        (
            {"opt": choice({"sgd": {"lr": "uniform(1, 0)"}})},
            "space.opt.sgd.lr: uniform(1, 0): low must be <= high",
        ),
        ({"act": object}, "space.act: constant <class 'object'> (type) is not supported"),
        ({"x": (1, [2, {"a": 1}])}, "space.x: constant {'a': 1} (dict) is not supported"),
        ({"x": float("nan")}, "space.x: constant nan (float) is not supported"),
    ],
)
def test_space_errors_name_the_parameter_path(mapping, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        Space(mapping)


def test_space_needs_a_mapping():
    with pytest.raises(ConfigError, match=re.escape("space: must be a mapping of parameter names")):
        Space([("lr", 0.1)])
    with pytest.raises(
        ConfigError, match=re.escape("grid: n_points must be an int >= 1 or None, got 0.")
    ):
        small_space().grid(n_points=0)


def test_constants_and_mapping_forms():
    space = Space(
        {"act": "relu", "betas": {"constant": [0.9, 0.999]}, "bs": {"choice": [32, 64]}, "n": None}
    )
    assert space.grid() == [
        {"act": "relu", "betas": (0.9, 0.999), "bs": 32, "n": None},
        {"act": "relu", "betas": (0.9, 0.999), "bs": 64, "n": None},
    ]
    assert space == Space({"act": "relu", "betas": (0.9, 0.999), "bs": choice(32, 64), "n": None})
    assert list(dict(space.dimensions())) == ["bs"]


def test_point_ranges_are_allowed_and_sample_their_value():
    space = Space({"a": uniform(0.5, 0.5), "k": randint(3, 3), "lr": loguniform(0.1, 0.1)})
    assert space.sample(random_study().ask()) == {"a": 0.5, "k": 3, "lr": 0.1}
    assert space.grid() == [{"a": 0.5, "k": 3, "lr": 0.1}]
