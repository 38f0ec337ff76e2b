"""The search-efficiency harness: ledger, replay snapping, pruning on replayed curves.

Runs on small in-memory tables with synthetic curves (no training), so it is fast; the
curves are made up, the studies, pruners and snapping are the real ones.
"""

from __future__ import annotations

import math
import re

import optuna
import pytest
from bench.search.evaluators import ReplayEvaluator
from bench.search.methods import METHODS, hptune_method, seed_grid_configs
from bench.search.protocol import BudgetExhausted, Ledger
from bench.search.space import make_config, table_configs
from bench.search.table import Table

from hptune.exceptions import ConfigError
from hptune.space import Space, uniform

EPOCHS = 10  # ASHA rungs at 1, 3, 9: all before the last epoch


def synthetic_curve(config: dict) -> list[float]:
    """A curve that rises to a config-dependent plateau; best near lr 1e-2, batch 32."""
    quality = 0.9 - 0.1 * abs(math.log10(config["lr"]) + 2) - config["batch_size"] / 1000
    return [round(quality * (1 - 0.5**epoch), 6) for epoch in range(1, EPOCHS + 1)]


@pytest.fixture(scope="module")
def table() -> Table:
    rows = [
        {"config": c, "curve": synthetic_curve(c), "test_accuracy": synthetic_curve(c)[-1] - 0.01,
         "diverged": False}
        for c in table_configs("mnist1d-cnn")
    ]  # fmt: skip
    return Table.from_rows("synthetic", rows)


class RecordingEvaluator(ReplayEvaluator):
    """Replay that also keeps, per run, the epochs it actually reported."""

    def __init__(self, table: Table) -> None:
        super().__init__(table)
        self.runs: list[tuple[int, list[int]]] = []

    def run(self, config, seed, report):
        epochs: list[int] = []
        self.runs.append((self.table.snap(config), epochs))

        def recording(epoch: int, value: float) -> bool:
            epochs.append(epoch)
            return report(epoch, value)

        return super().run(config, seed, recording)


def test_ledger_counts_epochs_keeps_best_and_stops_at_budget():
    ledger = Ledger(budget_epochs=3)
    a, b = {"lr": 1}, {"lr": 2}
    assert ledger.wrap(None, a)(1, 0.5) is False
    assert ledger.wrap(lambda e, v: True, b)(1, 0.7) is True
    assert ledger.wrap(None, a)(2, 0.6) is False
    with pytest.raises(BudgetExhausted):
        ledger.wrap(None, a)(3, 0.9)
    assert (ledger.spent, ledger.best, ledger.best_config) == (3, 0.7, b)
    assert ledger.curve == [(1, 0.5), (2, 0.7), (3, 0.7)]


def test_snap_matches_categoricals_and_takes_the_nearest_log_lr(table: Table):
    config = make_config(2e-3, 64, 0.0, 2, "sgd", 0.86, "plateau")
    row = table.rows[table.snap(config)]["config"]
    # log10(2e-3) = -2.7 is nearer -3 than -2; wd 0 clips to 1e-6, nearest level 1e-5.
    assert row == make_config(1e-3, 64, 1e-5, 2, "sgd", 0.9, "plateau")
    assert table.rows[table.snap(make_config(4e-3, 64, 0.0, 2, "sgd", 0.9, "plateau"))]["config"][
        "lr"
    ] == pytest.approx(1e-2)
    with pytest.raises(KeyError, match=re.escape("(16, 2, 'sgd', 'plateau')")):
        table.snap(make_config(1e-3, 16, 0.0, 2, "sgd", 0.9, "plateau"))


def test_oracle_is_the_best_val_at_any_epoch(table: Table):
    best = max(max(r["curve"]) for r in table.rows)
    assert table.oracle["best_val"] == best
    assert table.oracle["config"]["lr"] == pytest.approx(1e-2)
    assert table.oracle["config"]["batch_size"] == 32


def test_replay_stops_exactly_when_the_pruner_says_so(table: Table):
    good = make_config(1e-2, 32, 1e-5, 0, "adam", 0.9, "cosine")
    bad = make_config(1e-4, 128, 1e-5, 0, "adam", 0.9, "cosine")
    study = optuna.create_study(
        direction="maximize",
        pruner=optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=2),
    )
    ledger, evaluator = Ledger(100), RecordingEvaluator(table)
    for config in (good, bad):
        trial = study.ask()

        def report(epoch, value, trial=trial):
            trial.report(value, epoch)
            return trial.should_prune()

        evaluator.run(config, 0, ledger.wrap(report, config))
    first, second = study.trials
    # The first trial is alone at every rung: promoted each time, so it runs all epochs.
    assert evaluator.runs[0][1] == list(range(1, EPOCHS + 1))
    # The second is worse at rung 1 (epoch 1): stopped right there, not one epoch later.
    assert evaluator.runs[1][1] == [1]
    assert second.intermediate_values == {1: synthetic_curve(bad)[0]}
    assert ledger.spent == EPOCHS + 1


def test_hptune_asha_prunes_on_replayed_curves_like_a_live_run(table: Table):
    evaluator, ledger = RecordingEvaluator(table), Ledger(120)
    method = hptune_method("random", "asha")
    chosen = method(evaluator, ledger, 0)
    trials = method.last_study.trials
    states = [t.state for t in trials]
    assert "PRUNED" in states and "COMPLETE" in states
    # Every trial's stored values are exactly the epochs the evaluator replayed for it, and
    # they are the table's curve: pruning happened through trial.report, nowhere else.
    # The last run's last epoch is the one the ledger refused (budget spent): never reported.
    evaluator.runs[-1][1].pop()
    for record, (row, epochs) in zip(trials, evaluator.runs, strict=True):
        curve = table.rows[row]["curve"]
        assert sorted(record.intermediate_values) == epochs
        assert [record.intermediate_values[e] for e in epochs] == curve[: len(epochs)]
        if record.state == "PRUNED":
            assert len(epochs) < EPOCHS
    assert ledger.spent == 120 == sum(len(e) for _, e in evaluator.runs)
    assert chosen == max((t for t in trials if t.state == "COMPLETE"), key=lambda t: t.value).config


def test_seed_grid_is_the_articles_3x3x3_in_order_and_stops_at_budget(table: Table):
    configs = seed_grid_configs()
    assert len(configs) == 27
    assert [(c["lr"], c["batch_size"], c["weight_decay"]) for c in configs[:4]] == [
        (0.1, 32, 0.0), (0.1, 32, 0.001), (0.1, 32, 0.01), (0.1, 64, 0.0)]  # fmt: skip
    evaluator, ledger = RecordingEvaluator(table), Ledger(2 * EPOCHS + 3)
    METHODS["seed-grid"](evaluator, ledger, 0)
    assert [len(e) for _, e in evaluator.runs] == [EPOCHS, EPOCHS, 4]  # 4th report raised
    assert ledger.spent == 2 * EPOCHS + 3


#: The common space's fingerprint when evaluators began to carry their own space: the
#: replay tables were built over this space and their results must not move.
COMMON_SPACE_SHA256 = "6e1acd67e62b009246951b51b66208e3d65e865bcf00b1e83f0af905bd73c1c1"


def test_replay_and_live_evaluators_carry_the_common_space_unchanged(table: Table):
    from bench.search.evaluators import LiveEvaluator

    assert ReplayEvaluator(table).space.fingerprint() == COMMON_SPACE_SHA256
    live = LiveEvaluator("digits-mlp", max_epochs=1)  # builds no datasets until it trains
    assert live.space.fingerprint() == COMMON_SPACE_SHA256


def test_methods_search_the_evaluators_space_and_seed_searches_refuse_another(table: Table):
    evaluator = RecordingEvaluator(table)
    own = Space({"lr": uniform(0.01, 0.02), "batch_size": 32, "weight_decay": 1e-5,
                 "warmup_epochs": 0, "optimizer": {"name": "adam", "beta1": 0.9},
                 "scheduler": {"name": "cosine"}})  # fmt: skip
    evaluator.space = own
    METHODS["optuna-tpe"](evaluator, Ledger(3 * EPOCHS), 0)
    # Every draw came from the evaluator's narrow lr range, which snaps to the 1e-2 level
    # (the common space's lr range would reach the 1e-4, 1e-3 and 1e-1 levels too).
    lrs = [table.rows[row]["config"]["lr"] for row, _ in evaluator.runs]
    assert len(lrs) == 4 and all(lr == pytest.approx(1e-2) for lr in lrs)  # 4th: budget
    with pytest.raises(ConfigError, match=re.escape("cover the common space only")):
        METHODS["seed-random"](evaluator, Ledger(EPOCHS), 0)


def test_optuna_hyperband_runs_reproduce_for_a_seed(table: Table):
    def run(seed: int) -> list[tuple[int, list[int]]]:
        evaluator = RecordingEvaluator(table)
        METHODS["optuna-tpe-hyperband"](evaluator, Ledger(200), seed)
        return evaluator.runs

    # Brackets follow the study name, which the method derives from the seed.
    assert run(0) == run(0)


def test_optuna_random_asha_stops_trials_at_optunas_default_rungs(table: Table):
    evaluator = RecordingEvaluator(table)
    METHODS["optuna-random-asha"](evaluator, Ledger(150), 0)
    lengths = [len(epochs) for _, epochs in evaluator.runs[:-1]]  # the last: cut by the budget
    # min_resource "auto" = 10 epochs // 100 -> 1, reduction factor 4: rungs at 1 and 4; the
    # first trial runs in full (no complete trial to estimate from before it)
    assert lengths[0] == EPOCHS and set(lengths) == {1, 4, EPOCHS}


def test_a_replay_rerun_keeps_the_records_of_a_peer_not_installed_here(monkeypatch, tmp_path):
    """Re-measuring one method keeps every other method's saved records, also those of a
    peer whose package is missing on this machine; only a retired method's are dropped."""
    from bench.search import methods, report, run

    monkeypatch.setattr(run, "RESULTS_DIR", tmp_path)
    monkeypatch.setattr(report, "RESULTS_DIR", tmp_path)
    monkeypatch.setattr(report, "write_section", lambda blocks: None)
    monkeypatch.delitem(methods.METHODS, "ray-asha-random", raising=False)  # not installed

    def saved(method: str) -> dict:
        return {"task": "digits-mlp", "method": method, "seed": 0, "budget": 20,
                "test_accuracy": 0.9, "chosen": {}, "spent": 20,
                "curve": [[1, 0.5], [20, 0.9]], "seconds": 1.0}  # fmt: skip

    path = tmp_path / "replay-digits-mlp.json.gz"
    old = [saved("seed-random"), saved("ray-asha-random"), saved(run.RETIRED[0])]
    run.save_json_gz(path, {"command": "first", "records": old})
    argv = ["--replay", "--tasks", "digits-mlp", "--methods", "seed-random", "--seeds", "1",
            "--budget", "20", "--workers", "1"]  # fmt: skip
    assert run.main(argv) == 0
    kept = run.load_json_gz(path)
    assert [r["method"] for r in kept["records"]] == ["seed-random", "ray-asha-random"]
    assert kept["records"][0]["curve"] != old[0]["curve"]  # re-measured
    assert kept["command"].startswith("first; then python -m bench search --replay")


def _runs(method: str, finals: list[float], budget: int = 20) -> list[dict]:
    return [{"task": "hand-made", "method": method, "seed": s, "budget": budget,
             "test_accuracy": v, "chosen": {}, "spent": budget,
             "curve": [[1, v - 0.1], [budget, v]], "seconds": 1.0}
            for s, v in enumerate(finals)]  # fmt: skip


@pytest.mark.parametrize(
    ("default", "peer", "word"),
    [
        ([0.90, 0.91] * 10, [0.80, 0.81] * 10, "ahead of"),
        ([0.80, 0.81] * 10, [0.90, 0.91] * 10, "behind"),
        # medians 20 points apart, but each method's seeds split nearly half and half
        # between the same two rows: one seed more or less on a row turns the gap round
        ([0.70] * 9 + [0.90] * 11, [0.70] * 11 + [0.90] * 9, "level with"),
        ([0.901] * 20, [0.900] * 20, "level with"),  # certain, but 0.1 points
    ],
)
def test_a_verdict_needs_a_clear_gap_that_holds_across_resamples_of_the_seeds(default, peer, word):
    from bench.search.report import task_section

    text = task_section("hand-made", [*_runs("hptune-default", default), *_runs("peer", peer)],
                        "replay", plots=False)  # fmt: skip
    verdict = next(line for line in text.splitlines() if line.startswith("- vs peer:"))
    assert verdict.startswith(f"- vs peer: **{word}**"), verdict
