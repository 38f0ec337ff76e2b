import textwrap

import pytest

from hptune.spec import Budget, SpecError, load_spec, parse_duration, parse_spec

GOOD = """\
name: mnist1d-mlp
storage: sqlite:///hptune.db
task: mnist1d-mlp
metric: val_accuracy
direction: maximize
seed: 0
strategy: tpe
pruner: asha
budget: {trials: 40, epochs: 20, timeout: 15m}
workers: 2
space:
  lr: loguniform(1e-4, 1e-1)
  batch_size: choice(32, 64, 128, 256)
  weight_decay: loguniform(1e-6, 1e-2)
  warmup_epochs: randint(0, 5)
  optimizer:
    choice:
      adam: {beta1: uniform(0.85, 0.95)}
      sgd: {momentum: uniform(0.8, 0.99), nesterov: choice(true, false)}
  scheduler:
    choice:
      cosine: {}
      plateau: {factor: choice(0.1, 0.5), patience: randint(2, 8)}
"""


def test_design_contract_example_parses():
    spec = parse_spec(GOOD, "spec.yaml")
    assert spec.name == "mnist1d-mlp" and spec.task == "mnist1d-mlp"
    assert spec.strategy == "tpe" and spec.pruner == "asha"
    assert spec.budget == Budget(trials=40, epochs=20, timeout_s=900.0)
    assert spec.workers == 2 and spec.seed == 0 and spec.direction == "maximize"
    space = spec.build_space()
    assert len(space.grid(n_points=2)) > 0


def test_mapping_forms_of_strategy_and_pruner():
    text = GOOD.replace("strategy: tpe", "strategy: {name: coarse-to-fine, coarse_fraction: 0.3}")
    text = text.replace("pruner: asha", "pruner: {name: median, n_startup_trials: 2}")
    spec = parse_spec(text)
    assert spec.strategy == "coarse-to-fine" and spec.strategy_options == {"coarse_fraction": 0.3}
    assert spec.pruner == "median" and spec.pruner_options == {"n_startup_trials": 2}


def _errors(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_spec(textwrap.dedent(text), "s.yaml")
    return info.value.errors


BASE = "name: n\ntask: digits-mlp\nspace:\n  lr: loguniform(1e-4, 1e-1)\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            BASE + "strategy: tpee\n",
            "s.yaml:5: strategy: unknown strategy 'tpee' (did you mean 'tpe'?); valid: ",
        ),
        (
            BASE + "pruner: ashaa\n",
            "s.yaml:5: pruner: unknown pruner 'ashaa' (did you mean 'asha'?); valid: ",
        ),
        (
            BASE + "strategyy: tpe\n",
            "s.yaml:5: strategyy: unknown key (did you mean 'strategy'?); valid: name, storage",
        ),
        (
            BASE + "direction: max\n",
            "s.yaml:5: direction: expected minimize or maximize, got 'max'",
        ),
        (
            BASE + "workers: 0\n",
            "s.yaml:5: workers: must be an int >= 1, got 0; use 1 to run one trial at a time",
        ),
        (BASE + "workers: two\n", "s.yaml:5: workers: must be an int >= 1, got 'two'"),
        (BASE + "workers: 1.5\n", "s.yaml:5: workers: must be an int >= 1, got 1.5"),
        (BASE + "seed: true\n", "s.yaml:5: seed: must be an int >= 0, got True"),
        (
            BASE + "seed: -1\n",
            "s.yaml:5: seed: must be an int >= 0, got -1; use a seed >= 0 such as 0: numpy's "
            "SeedSequence, which derives each trial's seed from it, takes no negative seeds",
        ),
        (BASE + "seed: .nan\n", "s.yaml:5: seed: must be an int >= 0, got nan"),
        (
            BASE + "budget: {timeout: .nan}\n",
            "s.yaml:5: budget.timeout: a duration must be a finite number of seconds > 0, got nan",
        ),
        (
            BASE + "budget: {timeout: .inf}\n",
            "s.yaml:5: budget.timeout: a duration must be a finite number of seconds > 0, got inf",
        ),
        (
            BASE + "trials_per_device: 0\n",
            "s.yaml:5: trials_per_device: must be an int >= 1, got 0; or leave it out",
        ),
        (BASE + "budget: {trials: 0}\n", "s.yaml:5: budget.trials: must be >= 1, got 0"),
        (
            BASE + "budget: {trails: 3}\n",
            "s.yaml:5: budget.trails: unknown key (did you mean 'trials'?); valid: trials",
        ),
        (
            BASE + "budget: {timeout: soon}\n",
            "s.yaml:5: budget.timeout: cannot read 'soon' as a duration",
        ),
        (BASE + "budget: 10\n", "s.yaml:5: budget: expected a mapping like {trials: 40"),
        (
            BASE + "training: {grad_clip: -1}\n",
            "s.yaml:5: training.grad_clip: must be a finite number > 0 or None, got -1",
        ),
        (
            BASE + "training: {lr_scaling: cubic}\n",
            "s.yaml:5: training.lr_scaling: must be one of 'none', 'linear', 'sqrt', got 'cubic'",
        ),
        (
            BASE + "training: {lr_scaling: linear}\n",
            "training.lr_scaling: 'linear' needs base_batch_size",
        ),
        (
            BASE + "training: {colour: red}\n",
            "s.yaml:5: training.colour: unknown option; valid: max_micro_batch",
        ),
        (BASE + "metric: val_acc\n", "s.yaml:5: metric: unknown metric 'val_acc'; valid: "),
        (
            BASE + "metric: val_loss\ndirection: maximize\n",
            "s.yaml:6: direction: direction 'maximize' does not fit metric 'val_loss', which "
            "is better lower; use 'minimize' or leave direction out",
        ),
        (
            "name: n\nspace: {lr: 0.1}\n",
            "s.yaml: task: missing: a built-in task (e.g. mnist1d-mlp)",
        ),
        ("name: n\ntask: t\n", "s.yaml: space: expected a non-empty mapping of parameters"),
        (
            "name: n\ntask: t\nspace:\n  lr: loguniform(0, 1)\n",
            "s.yaml:4: space.lr: loguniform(0, 1): loguniform needs low > 0",
        ),
        (
            "name: n\ntask: t\nspace:\n  lr: logunifrom(1e-4, 1)\n",
            "s.yaml:4: space.lr: 'logunifrom(1e-4, 1)': unknown form 'logunifrom'",
        ),
        (
            "name: n\ntask: t\nspace:\n  optimizer:\n    choice:\n      sgd:\n        momentum: uniform(0.99, 0.8)\n",
            "s.yaml:7: space.optimizer.sgd.momentum: uniform(0.99, 0.8): low must be <= high",
        ),
        ("name: n\ntask: t\nspace:\n  lr: 1\n  lr: 2\n", "s.yaml:5: space.lr: duplicate key"),
        ("name: n\ntask: [t\n", "s.yaml:3: not valid YAML"),
        ("- a\n- b\n", "s.yaml: a spec is a mapping of keys (name, task, space, ...), got list"),
        ("", "s.yaml: the spec is empty"),
    ],
)
def test_bad_input_is_named_with_key_path_and_line(text, expected):
    errors = _errors(text)
    assert any(expected in e for e in errors), errors


def test_all_errors_are_reported_at_once():
    errors = _errors(BASE + "strategy: tpee\npruner: nope\nworkers: 0\n")
    assert len(errors) == 3


def test_load_spec_defaults_name_to_file_stem(tmp_path):
    path = tmp_path / "my-study.yaml"
    path.write_text("task: digits-mlp\nspace: {lr: loguniform(1e-3, 1e-1)}\n")
    spec = load_spec(path)
    assert spec.name == "my-study" and spec.storage == "sqlite:///hptune.db"
    assert spec.strategy == "multi-fidelity" and spec.pruner == "asha" and spec.workers == 1
    with pytest.raises(SpecError, match="no such file"):
        load_spec(tmp_path / "missing.yaml")


def test_overrides_are_validated():
    spec = parse_spec(BASE)
    assert spec.replace(workers=3).workers == 3
    assert spec.trials_per_device is None  # packs as the workers need
    assert spec.replace(trials_per_device=2).trials_per_device == 2
    with pytest.raises(SpecError, match="--trials-per-device must be >= 1, got 0"):
        spec.replace(trials_per_device=0)
    with pytest.raises(SpecError, match="--workers must be >= 1, got 0"):
        spec.replace(workers=0)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(90, 90.0), ("90s", 90.0), ("15m", 900.0), ("1h30m", 5400.0), ("2.5m", 150.0)],
)
def test_parse_duration(value, seconds):
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    "value",
    [
        "",
        "m",
        "-5",
        0,
        True,
        "5 minutes",
        float("nan"),
        float("inf"),
        -1.5,
        10**400,
        "9" * 400 + "s",
    ],
)
def test_parse_duration_rejects(value):
    with pytest.raises(ValueError):
        parse_duration(value)


def test_parse_duration_refuses_nan_which_a_plain_comparison_lets_through():
    assert not float("nan") <= 0  # why the check is a rule, not `seconds <= 0`
    with pytest.raises(ValueError, match="must be a finite number of seconds > 0, got nan"):
        parse_duration(float("nan"))


def test_seed_zero_and_large_seeds_are_kept():
    assert parse_spec(BASE + "seed: 0\n").seed == 0
    assert parse_spec(BASE + f"seed: {10**29}\n").seed == 10**29  # 30 digits, the most
    assert parse_spec(BASE).seed is None


def test_plain_scientific_notation_is_a_number_but_quoted_stays_text():
    spec = parse_spec(BASE + "training: {grad_clip: 1e-1}\n")
    assert spec.training.grad_clip == 0.1
    spec = parse_spec("name: n\ntask: t\nspace:\n  lr: 1e-3\n  tag: '1e-3'\n")
    assert spec.space == {"lr": 0.001, "tag": "1e-3"}


def test_forms_with_commas_inside_flow_mappings_keep_their_commas():
    spec = parse_spec(
        "name: n\ntask: t\nspace:\n  optimizer:\n    choice:\n"
        "      adam: {beta1: uniform(0.85, 0.95)}\n"
        '      sgd: {momentum: "uniform(0.8, 0.99)", nesterov: choice(true, false)}\n'
        "  act: {choice: [relu, gelu]}\n  tag: choice('a', 'b')\n"
    )
    opt = spec.space["optimizer"]["choice"]
    assert opt["adam"] == {"beta1": "uniform(0.85, 0.95)"}
    assert opt["sgd"] == {"momentum": "uniform(0.8, 0.99)", "nesterov": "choice(true, false)"}
    assert spec.space["tag"] == "choice('a', 'b')"


def test_spec_error_locates_problems_found_after_parsing():
    from hptune.spec import spec_error

    spec = parse_spec(
        "name: n\ntask: t\nspace:\n  optimizer:\n    choice:\n      sgd: {momentum: 0.9}\n",
        "s.yaml",
    )
    error = spec_error(
        spec, [(("space", "optimizer", "sgd", "momentum"), "too much"), (("metric",), "bad")]
    )
    # The space path goes through the YAML's `choice:` key; a key the spec lacks has no line.
    assert error.errors == [
        "s.yaml:6: space.optimizer.sgd.momentum: too much",
        "s.yaml: metric: bad",
    ]
    # The line map plays no part in equality: the same spec a line lower is the same spec.
    assert parse_spec(BASE) == parse_spec("\n" + BASE)


def test_direction_defaults_from_the_metric():
    assert parse_spec(BASE + "metric: val_loss\n").direction == "minimize"
    assert parse_spec(BASE + "metric: val_accuracy\n").direction == "maximize"
    assert parse_spec(BASE).direction == "maximize"  # val_accuracy, the default metric
    assert parse_spec(BASE + "metric: val_loss\ndirection: minimize\n").direction == "minimize"


def test_confirm_takes_top_and_seeds_with_defaults():
    budget = "budget: {trials: 20}\n"
    assert parse_spec(BASE + budget + "confirm: {}\n").confirm == {"top": 3, "seeds": 2}
    spec = parse_spec(BASE + budget + "confirm: {top: 2, seeds: 4}\n")
    assert spec.confirm == {"top": 2, "seeds": 4}
    assert parse_spec(BASE + budget).confirm is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "budget: {trials: 20}\nconfirm: {top: 0}\n",
            "s.yaml:6: confirm.top: must be an int >= 1, got 0; e.g. top: 3",
        ),
        (
            "budget: {trials: 20}\nconfirm: {seeds: 1.5}\n",
            "s.yaml:6: confirm.seeds: must be an int >= 1, got 1.5; e.g. seeds: 2",
        ),
        (
            "budget: {trials: 20}\nconfirm: {topp: 2}\n",
            "s.yaml:6: confirm.topp: unknown key (did you mean 'top'?); valid: top, seeds",
        ),
        (
            "confirm: yes\n",
            "s.yaml:5: confirm: expected a mapping like {top: 3, seeds: 2}, got True",
        ),
        (
            "confirm: {}\n",
            "s.yaml:5: confirm: needs budget.trials: its 6 trials (top x seeds) come from the "
            "end of that budget; add budget: {trials: ...}",
        ),
        (
            "budget: {trials: 6}\nconfirm: {top: 3, seeds: 2}\n",
            "s.yaml:6: confirm: takes its 6 trials (top x seeds) from budget.trials, which must "
            "be larger, got 6; raise budget.trials or lower confirm's top or seeds",
        ),
    ],
)
def test_a_confirm_that_cannot_work_is_refused_at_its_line(text, expected):
    errors = _errors(BASE + text)
    assert expected in errors[0] and len(errors) == 1, errors


def test_a_trials_override_must_leave_room_for_the_confirmation():
    spec = parse_spec(BASE + "budget: {trials: 20}\nconfirm: {top: 2, seeds: 2}\n")
    assert spec.replace(budget=Budget(trials=5)).budget.trials == 5
    with pytest.raises(SpecError, match="--trials 4: confirm takes its 4 trials"):
        spec.replace(budget=Budget(trials=4))


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///", "sqlite:///:memory:"])
def test_an_in_memory_storage_is_refused_as_it_keeps_nothing(url):
    with pytest.raises(SpecError, match="storage: an in-memory database keeps nothing"):
        parse_spec(f"name: n\ntask: digits-mlp\nstorage: '{url}'\nspace: {{lr: 0.1}}\n")
    spec = parse_spec("name: n\ntask: digits-mlp\nspace: {lr: 0.1}\n")
    with pytest.raises(SpecError, match=f"--storage {url}: an in-memory database"):
        spec.replace(storage=url)


def test_budget_takes_a_trial_timeout_and_refuses_absurd_counts():
    spec = parse_spec("name: n\ntask: digits-mlp\nbudget: {trial_timeout: 90s}\nspace: {lr: 0.1}\n")
    assert spec.budget.trial_timeout_s == 90.0
    with pytest.raises(SpecError, match=r"budget\.epochs: must be at most 10000000, got 1"):
        parse_spec("name: n\ntask: digits-mlp\nbudget: {epochs: 100000000000000000000}\n"
                   "space: {lr: 0.1}\n")  # fmt: skip


@pytest.mark.parametrize("name", ['""', '"   "', '" padded "', '"two\\nlines"'])
def test_a_name_that_is_empty_or_padded_is_refused_not_replaced(name):
    """An empty name silently became the spec file's name."""
    with pytest.raises(SpecError, match="name: must be a study name without blanks"):
        parse_spec(f"name: {name}\ntask: digits-mlp\nspace: {{lr: 0.1}}\n", default_name="f")
    assert parse_spec("task: digits-mlp\nspace: {lr: 0.1}\n", default_name="f").name == "f"
