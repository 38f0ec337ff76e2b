"""``lr: auto``: the LR range test sets the study's LR range, once per study (real digits
training, real SQLite files, the real CLI)."""

from __future__ import annotations

import pytest

from hptune import runner
from hptune.cli import main
from hptune.exceptions import HptuneError, SpecError
from hptune.space import FloatDimension
from hptune.spec import parse_spec
from hptune.study import load_study
from hptune.tasks import get_task
from hptune.training import lr_find

SPEC = """\
name: auto
task: digits-mlp
seed: 0
strategy: random
budget: {trials: 4, epochs: 1}
space:
  lr: auto
  batch_size: choice(32, 64)
  optimizer:
    choice:
      adam: {}
      sgd: {momentum: uniform(0.8, 0.95)}
"""


def _spec(tmp_path, text=SPEC):
    return parse_spec(text, "s.yaml").replace(storage=f"sqlite:///{tmp_path / 'a.db'}")


def test_the_spec_keeps_auto_and_its_checks_sweep_every_lr():
    spec = parse_spec(SPEC, "s.yaml")
    assert spec.space["lr"] == "auto"
    lr = dict(spec.build_space().dimensions())["lr"]
    assert isinstance(lr, FloatDimension) and lr.log and (lr.low, lr.high) == (1e-7, 10.0)
    runner.check_spec(spec)  # validate: the recipe takes every LR of the sweep


def test_auto_for_a_full_objective_is_refused_before_anything_runs():
    text = SPEC.replace("task: digits-mlp", "task: tests.execution.objectives:double")
    with pytest.raises(SpecError, match=r"space\.lr: auto needs a task the recipe trains"):
        runner.check_spec(parse_spec(text, "s.yaml"))


@pytest.mark.slow
def test_the_range_is_the_union_of_each_optimizers_range_test(tmp_path):
    spec = _spec(tmp_path)
    assert runner.lr_test_due(spec)
    study = runner.prepare(spec)
    found = study.optuna_study.user_attrs[runner.LR_AUTO_ATTR]
    assert set(found["optimizers"]) == {"adam", "sgd"} and found["seed"] == 0
    # Each optimizer's test runs on the space's first value of the rest (a range: its middle).
    task = get_task("digits-mlp")
    for name, config in (
        ("adam", {"batch_size": 32, "optimizer": {"name": "adam"}}),
        ("sgd", {"batch_size": 32, "optimizer": {"name": "sgd", "momentum": 0.875}}),
    ):
        expected = lr_find(task, config, seed=0)
        assert found["optimizers"][name]["lr"] == pytest.approx(expected.suggested_lr)
        assert found["optimizers"][name]["range"] == pytest.approx(list(expected.suggested_range))
    spans = [o["range"] for o in found["optimizers"].values()]
    low, high = found["range"]
    assert low == pytest.approx(min(s[0] for s in spans), rel=1e-2)
    assert high == pytest.approx(max(s[1] for s in spans), rel=1e-2)
    lr = dict(study.space.dimensions())["lr"]
    assert (lr.low, lr.high, lr.log) == (low, high, True)
    runner.optimize(study, spec)
    assert all(low <= r.config["lr"] <= high for r in study.trials)
    assert not runner.lr_test_due(spec)


@pytest.mark.slow
def test_the_test_runs_once_per_study(tmp_path, monkeypatch):
    spec = _spec(tmp_path)
    first = runner.prepare(spec)
    range_ = first.optuna_study.user_attrs[runner.LR_AUTO_ATTR]["range"]

    def no_second_test(*args, **kwargs):
        raise AssertionError("the LR range test ran again on an existing study")

    monkeypatch.setattr("hptune.training.lr_find", no_second_test)
    again = runner.prepare(spec.replace(budget=spec.budget))
    assert again.optuna_study.user_attrs[runner.LR_AUTO_ATTR]["range"] == range_
    assert again.space.fingerprint() == first.space.fingerprint()


def test_no_range_found_is_one_line_and_creates_no_study(tmp_path, monkeypatch):
    from hptune.training.lr_finder import LRFinderResult

    def flat(*args, **kwargs):
        return LRFinderResult(
            lrs=(1e-3,), losses=(1.0,), smoothed_losses=(1.0,), suggested_lr=None,
            suggested_range=None, stop_reason="completed",
            no_suggestion_reason="the loss never fell",
        )  # fmt: skip

    monkeypatch.setattr("hptune.training.lr_find", flat)
    spec = _spec(tmp_path)
    with pytest.raises(HptuneError, match=r"^lr: auto: the LR range test found no range \(adam"):
        runner.prepare(spec)
    with pytest.raises(HptuneError):
        load_study("auto", spec.storage)


@pytest.mark.slow
def test_run_says_it_tests_and_what_it_found(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.yaml").write_text(SPEC.replace("trials: 4", "trials: 1"))
    assert main(["run", "s.yaml", "--storage", "sqlite:///c.db"]) == 0
    printed = capsys.readouterr().out
    assert "lr: auto: running the LR range test for the new study ..." in printed
    assert "lr: auto = loguniform(" in printed and "from the LR range test (adam: " in printed


def test_validate_says_auto_runs_its_test_later_and_runs_nothing(tmp_path, monkeypatch, capsys):
    def no_test(*args, **kwargs):
        raise AssertionError("validate ran the LR range test")

    monkeypatch.setattr("hptune.training.lr_find", no_test)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.yaml").write_text(SPEC + "confirm: {top: 1, seeds: 2}\n")
    assert main(["validate", "s.yaml"]) == 0
    printed = capsys.readouterr().out
    assert "confirm top 1 x 2 seeds" in printed
    assert "lr: auto (its range test runs when the study is created)" in printed


FOUND = {
    "range": [1e-3, 0.5],
    "optimizers": {
        "adam": {"lr": 3e-3, "range": [1e-3, 1e-2], "why_none": None},
        "sgd": {"lr": 0.2, "range": [0.01, 1.0], "why_none": None},
    },
    "seed": 0,
}


def test_each_optimizers_suggestion_is_the_mode_of_its_lr_prior():
    spec = parse_spec(SPEC.replace("strategy: random\n", ""), "s.yaml")  # the default
    assert spec.strategy == "multi-fidelity"
    # The range test's suggestions, clipped to the union range; a quarter of each range.
    assert runner.lr_priors(FOUND, spec) == {
        "lr": {"adam": {"mode": 3e-3, "width": 0.25}, "sgd": {"mode": 0.2, "width": 0.5}}
    }
    # A strategy without priors, a prior the spec gives lr, no suggestion: none.
    assert runner.lr_priors(FOUND, parse_spec(SPEC, "s.yaml")) is None
    given = spec.replace(strategy_options={"priors": {"lr": {"adam": 1e-3}}})
    assert runner.lr_priors(FOUND, given) is None
    none = {**FOUND, "optimizers": {"adam": {"lr": None, "range": None, "why_none": "flat"}}}
    assert runner.lr_priors(none, spec) is None
    # One optimizer, no choice: one prior for lr; other priors of the spec are kept.
    single = spec.replace(
        space={"lr": "auto", "optimizer": {"name": "sgd", "momentum": 0.9}},
        strategy_options={"priors": {"weight_decay": 1e-4}},
    )
    only_sgd = {**FOUND, "optimizers": {"sgd": FOUND["optimizers"]["sgd"]}}
    assert runner.lr_priors(only_sgd, single) == {
        "weight_decay": 1e-4, "lr": {"mode": 0.2, "width": 0.5}
    }  # fmt: skip


@pytest.mark.slow
def test_the_first_trial_trains_its_optimizer_at_the_suggested_lr(tmp_path):
    spec = _spec(tmp_path, SPEC.replace("strategy: random", "strategy: multi-fidelity"))
    study = runner.prepare(spec)
    runner.optimize(study, spec.replace(budget=spec.budget.__class__(trials=1, epochs=1)))
    found = study.optuna_study.user_attrs[runner.LR_AUTO_ATTR]
    first = study.trials[0].config
    suggested = found["optimizers"][first["optimizer"]["name"]]["lr"]
    low, high = found["range"]
    assert first["lr"] == pytest.approx(min(max(suggested, low), high))
