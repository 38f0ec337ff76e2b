"""The LCBench surrogate's loader, its space and its evaluator (bench/lcbench, no training:
the model answers in under a millisecond)."""

from __future__ import annotations

import re

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from bench.lcbench import DEV_TASKS, lcbench_space, load_surrogate  # noqa: E402
from bench.lcbench.surrogate import X_CONT, config_row, config_space, task_codes  # noqa: E402

from hptune.exceptions import ConfigError  # noqa: E402

#: The four reference rows of the data folder's README (task 7593): inputs, then outputs
#: rounded to 4 places, in the model's output order.
REFERENCE = [
    ({"epoch": 1, "batch_size": 64, "learning_rate": 0.01, "momentum": 0.9,
      "weight_decay": 0.001, "num_layers": 2, "max_units": 256, "max_dropout": 0.1},
     [22.1485, 11.3828, 1.7885, 0.1632, 1.9186, 0.1671]),
    ({"epoch": 52, "batch_size": 64, "learning_rate": 0.01, "momentum": 0.9,
      "weight_decay": 0.001, "num_layers": 2, "max_units": 256, "max_dropout": 0.1},
     [682.2211, 71.6266, 0.6051, 0.7723, 1.5287, 0.7791]),
    ({"epoch": 52, "batch_size": 512, "learning_rate": 0.0002, "momentum": 0.2,
      "weight_decay": 0.05, "num_layers": 5, "max_units": 1024, "max_dropout": 0.8},
     [2507.1956, 12.0522, 1.6407, 0.4013, 1.8316, 0.4114]),
    ({"epoch": 10, "batch_size": 16, "learning_rate": 0.09, "momentum": 0.99,
      "weight_decay": 1e-05, "num_layers": 1, "max_units": 64, "max_dropout": 0.0},
     [195.9637, 67.4546, 0.9126, 0.6425, 1.5339, 0.6543]),
]  # fmt: skip
OUTPUT_ORDER = [
    "time", "val_accuracy", "val_cross_entropy", "val_balanced_accuracy", "test_cross_entropy",
    "test_balanced_accuracy",
]  # fmt: skip


def test_loader_reproduces_the_four_reference_rows_in_one_call():
    x = np.array([[row[name] for name in X_CONT] for row, _ in REFERENCE])
    out = load_surrogate().predict(7593, x)
    for name, column in zip(OUTPUT_ORDER, np.array([o for _, o in REFERENCE]).T):
        assert out[name] == pytest.approx(column, abs=1e-3), name


def test_a_curve_is_the_rows_of_its_epochs():
    inputs, outputs = REFERENCE[1]
    config = {k: v for k, v in inputs.items() if k != "epoch"}
    curve = load_surrogate().curve(7593, config)
    assert curve["val_accuracy"].shape == (52,)
    assert curve["val_accuracy"][51] == pytest.approx(outputs[1], abs=1e-3)
    assert curve["time"][0] == pytest.approx(REFERENCE[0][1][0], abs=1e-3)  # epoch 1


def test_task_codes_come_from_the_encoding_not_from_the_config_space_order():
    # config_space.json lists 3945 first; its code in encoding.json is 34, 7593's is 35.
    assert task_codes()["7593"] == 35 and task_codes()["3945"] == 34
    other = load_surrogate().predict(3945, [[52, 64, 0.01, 0.9, 0.001, 2, 256, 0.1]])
    assert other["val_accuracy"][0] != pytest.approx(REFERENCE[1][1][1], abs=1e-3)


def test_every_development_task_is_known_to_the_model_and_the_space():
    assert len(set(DEV_TASKS)) == 26
    assert {str(t) for t in DEV_TASKS} <= set(task_codes())
    assert {str(t) for t in DEV_TASKS} <= set(config_space()["OpenML_task_id"]["choices"])


def test_unknown_task_and_out_of_range_values_are_refused():
    with pytest.raises(ConfigError, match=re.escape("LCBench has no OpenML task 12345; valid:")):
        load_surrogate().code(12345)
    config = {k: v for k, v in REFERENCE[1][0].items() if k != "epoch"}
    with pytest.raises(ConfigError, match=re.escape("LCBench momentum=1.5 is outside [0.1, 0.99]")):
        config_row({**config, "momentum": 1.5})
    with pytest.raises(ConfigError, match=re.escape("LCBench config lacks ['max_dropout']")):
        config_row({k: v for k, v in config.items() if k != "max_dropout"})


def test_space_follows_the_config_space_file():
    assert lcbench_space().to_dict() == {
        "batch_size": "randint(16, 512, log=True)",
        "learning_rate": "loguniform(0.0001, 0.1)",
        "momentum": "uniform(0.1, 0.99)",
        "weight_decay": "uniform(1e-05, 0.1)",  # linear in the surrogate's space
        "num_layers": "randint(1, 5)",
        "max_units": "randint(64, 1024, log=True)",
        "max_dropout": "uniform(0.0, 1.0)",
    }


# -- the evaluator ----------------------------------------------------------------------------

CONFIG = {k: v for k, v in REFERENCE[1][0].items() if k != "epoch"}


def test_evaluator_reports_1_based_epochs_as_fractions_and_stops_on_true():
    from bench.search.evaluators import LCBenchEvaluator

    seen: list[tuple[int, float]] = []
    ev = LCBenchEvaluator(7593)
    best = ev.run(CONFIG, seed=0, report=lambda e, v: seen.append((e, v)) or e == 3)
    curve = load_surrogate().curve(7593, CONFIG)["val_accuracy"] / 100
    assert [e for e, _ in seen] == [1, 2, 3]  # stopped right after the report that said True
    assert [v for _, v in seen] == pytest.approx(curve[:3])
    assert best == pytest.approx(max(curve[:3]))
    full: list[int] = []
    assert ev.run(CONFIG, 0, lambda e, v: full.append(e) is None and False) == pytest.approx(
        max(curve)
    )
    assert full == list(range(1, 53))
    # the test metric is test_balanced_accuracy at epoch 52 (reference row 2), a fraction
    assert ev.test_accuracy(CONFIG, seed=0) == pytest.approx(0.7791, abs=1e-3)


def test_evaluator_calls_the_model_once_per_config_and_pickles_without_its_cache(monkeypatch):
    import pickle

    from bench.lcbench.surrogate import Surrogate
    from bench.search.evaluators import LCBenchEvaluator

    calls = []
    original = Surrogate.curve
    monkeypatch.setattr(Surrogate, "curve", lambda *a, **k: calls.append(1) or original(*a, **k))
    ev = LCBenchEvaluator(7593)
    for _ in range(3):
        ev.run(CONFIG, seed=0, report=lambda e, v: False)
    ev.test_accuracy(CONFIG, seed=0)
    assert len(calls) == 1
    copy = pickle.loads(pickle.dumps(ev))  # Ray Tune ships the evaluator to its workers
    assert (copy.task, copy._curves) == ("lcbench-7593", {})


def test_evaluator_refuses_an_unknown_task_at_once():
    from bench.search.evaluators import LCBenchEvaluator

    with pytest.raises(ConfigError, match=re.escape("LCBench has no OpenML task 1;")):
        LCBenchEvaluator(1)


# -- methods end to end -----------------------------------------------------------------------

FAST = ["hptune-default", "hptune-tpe-hyperband", "optuna-tpe", "optuna-tpe-hyperband",
        "optuna-random-asha", "hyperopt-tpe", "dehb"]  # fmt: skip


@pytest.mark.parametrize("name", FAST)
def test_a_method_searches_lcbench_to_the_budget_in_its_space(name):
    from bench.search.evaluators import LCBenchEvaluator
    from bench.search.methods import METHODS, UNAVAILABLE
    from bench.search.protocol import Ledger

    if name not in METHODS:
        pytest.skip(UNAVAILABLE.get(name, f"{name} not available"))
    ev, ledger = LCBenchEvaluator(7593), Ledger(3 * 52)
    chosen = METHODS[name](ev, ledger, 0)
    assert ledger.spent == 3 * 52
    lcbench_space().flatten(chosen)  # raises for a config outside LCBench's space
    assert 0 < ev.test_accuracy(chosen, 0) <= 1


def test_run_one_records_the_curve_as_its_steps():
    from bench.search.report import anytime
    from bench.search.run import run_one, steps

    curve = [(1, 0.2), (2, 0.5), (3, 0.5), (4, 0.5), (5, 0.7)]
    assert steps(curve) == [(1, 0.2), (2, 0.5), (5, 0.7)]
    assert list(anytime(steps(curve), 6)) == list(anytime(curve, 6))
    assert steps([(1, 0.1234564), (2, 0.1234561), (3, 0.2)], ndigits=6) == [
        (1, 0.123456), (3, 0.2)]  # fmt: skip
    record = run_one("lcbench-7593", "optuna-tpe", 0, True, 2 * 52)
    assert record["spent"] == 104 and "error" not in record
    bests = [b for _, b in record["curve"]]
    assert bests == sorted(set(bests))  # strictly rising: one point per change


def test_no_write_prints_and_leaves_the_results_alone(monkeypatch, tmp_path, capsys):
    from bench.search import regret, report, run_lcbench
    from bench.search.run import main

    monkeypatch.setattr(run_lcbench, "PATH", tmp_path / "lcbench.json.gz")
    monkeypatch.setattr(regret, "RESULTS_DIR", tmp_path)

    def refuse(*args):
        raise AssertionError("RESULTS.md written")

    monkeypatch.setattr(report, "write_block", refuse)
    argv = ["--lcbench", "--tasks", "lcbench-7593", "--methods", "optuna-tpe", "--seeds", "1",
            "--budget", "104", "--workers", "1", "--no-write"]  # fmt: skip
    assert main(argv) == 0
    assert "| optuna-tpe | 1 |" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []  # neither the records nor the plot
