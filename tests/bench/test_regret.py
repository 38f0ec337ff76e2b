"""LCBench's regret tables on hand-made records (numbers checkable by hand; no model)."""

from __future__ import annotations

import pytest
from bench.search import regret
from bench.search.run_lcbench import merge

BEST = {"1": 80.0, "2": 50.0}
BUDGET = 8  # checkpoints at 2, 4 and 8 epochs


def rec(method: str, task: str, seed: int, curve: list) -> dict:
    return {"method": method, "task": f"lcbench-{task}", "seed": seed, "budget": BUDGET,
            "curve": curve, "seconds": 1.0, "test_accuracy": 0.5}  # fmt: skip


RECORDS = [
    # regret at 2 / 4 / 8 epochs in the comments (points)
    rec("hptune-default", "1", 0, [(1, 0.70), (4, 0.79)]),  # 10 / 1 / 1
    rec("hptune-default", "1", 1, [(2, 0.75)]),  # 5 / 5 / 5
    rec("hptune-default", "2", 0, [(1, 0.49)]),  # 1 / 1 / 1
    rec("hptune-default", "2", 1, [(1, 0.40)]),  # 10 / 10 / 10
    rec("peer", "1", 0, [(1, 0.60), (8, 0.81)]),  # 20 / 20 / -1: beyond the best known
    rec("peer", "1", 1, [(1, 0.78)]),  # 2 / 2 / 2
    rec("peer", "2", 0, [(1, 0.45)]),  # 5
    rec("peer", "2", 1, [(1, 0.45)]),  # 5
]


def test_checkpoints_are_a_quarter_half_and_all_of_the_budget():
    assert regret.checkpoints(1040) == [260, 520, 1040]
    assert regret.checkpoints(BUDGET) == [2, 4, 8]


def test_regret_is_best_known_minus_the_incumbent_in_points_per_epoch():
    runs = regret.run_regrets(RECORDS, BEST)
    first = runs["hptune-default"]["lcbench-1"][0]
    assert list(first) == pytest.approx([10, 10, 10, 1, 1, 1, 1, 1])
    assert runs["hptune-default"]["lcbench-1"][1][0] != runs["hptune-default"]["lcbench-1"][1][0]
    assert runs["peer"]["lcbench-1"][0][-1] == pytest.approx(-1)  # NaN above: no report yet


def test_medians_wins_ranks_and_runs_within_one_point():
    stats = regret.summary(regret.run_regrets(RECORDS, BEST), BUDGET)
    default, peer = stats["hptune-default"], stats["peer"]
    # at 2 epochs: task 1 medians 7.5 vs 11 (default wins), task 2 5.5 vs 5 (peer wins)
    assert default["wins"] == [1, 1, 0] and peer["wins"] == [1, 1, 2]
    assert default["median"] == pytest.approx([6.5, 4.25, 4.25])  # median of (7.5, 5.5), ...
    assert peer["median"] == pytest.approx([8.0, 8.0, 2.75])  # of (11, 5), (11, 5), (0.5, 5)
    assert default["mean_rank"] == pytest.approx([1.5, 1.5, 2.0])
    assert (default["within"], default["runs"], peer["within"], peer["runs"]) == (2, 4, 1, 4)
    assert default["seeds"] == [2]


def test_tied_methods_share_the_rank_and_the_win():
    ranks = regret.ranks({"a": {"t": 1.0}, "b": {"t": 1.0}, "c": {"t": 3.0}})
    assert ranks == {"a": {"t": 1.5}, "b": {"t": 1.5}, "c": {"t": 3.0}}


def test_criteria_say_which_condition_holds_with_its_numbers():
    runs = regret.run_regrets(RECORDS, BEST)
    stats = regret.summary(runs, BUDGET)
    per_task = [regret.medians(runs, e) for e in regret.checkpoints(BUDGET)]
    lines = regret.criteria(stats, per_task, n_tasks=2)
    assert lines[0] == ("- **FAIL**: lower median regret than every peer at 25 % of the budget "
                        "on 1/2 tasks (needs >= 2)")  # fmt: skip
    assert lines[3] == ("- **FAIL**: median regret at 100 %: 4.25 points vs the best peer's "
                        "2.75 (peer); needs <= half")  # fmt: skip
    assert lines[4].startswith("- **PASS**: runs within 1 point at 100 %: 2/4 vs the best "
                               "peer's 1/4 (peer)")  # fmt: skip


def test_merge_replaces_the_pairs_run_again_and_keeps_the_others():
    saved = {"runs": [{"command": "first"}], "records": RECORDS}
    new = [rec("hptune-default", "1", 0, [(1, 0.8)])]
    merged = merge(saved, new, {"command": "second"})
    pairs = [(r["method"], r["task"], r["seed"]) for r in merged["records"]]
    assert pairs[:3] == [("hptune-default", "lcbench-1", 0), ("peer", "lcbench-1", 0),
                         ("peer", "lcbench-1", 1)]  # fmt: skip
    assert len(merged["records"]) == 7  # task 1's two default runs became the one new run
    assert [r["command"] for r in merged["runs"]] == ["first", "second"]


def test_no_run_within_one_point_on_either_side_does_not_meet_the_bar():
    far = [rec(m, "1", 0, [(1, 0.5)]) for m in ("hptune-default", "peer")]  # 30 points off
    runs = regret.run_regrets(far, BEST)
    stats = regret.summary(runs, BUDGET)
    per_task = [regret.medians(runs, e) for e in regret.checkpoints(BUDGET)]
    assert regret.criteria(stats, per_task, n_tasks=1)[4].startswith(
        "- **FAIL**: runs within 1 point at 100 %: 0/1 vs the best peer's 0/1"
    )


def test_hptune_rows_are_no_peers_and_each_gets_the_bar():
    ablation = [dict(r, method="hptune-random") for r in RECORDS if r["method"] == "peer"]
    runs = regret.run_regrets(RECORDS + ablation, BEST)
    stats = regret.summary(runs, BUDGET)
    per_task = [regret.medians(runs, e) for e in regret.checkpoints(BUDGET)]
    # hptune-random has the peer's numbers, yet the default is judged against "peer" only
    assert regret.criteria(stats, per_task, 2)[3].endswith("2.75 (peer); needs <= half")
    bars = regret.bars(stats, per_task, 2)
    heads = [line for line in bars if line.startswith("Issue 12's bar for")]
    assert [h.split()[4] for h in heads] == ["hptune-default", "hptune-random"]


def test_merge_drops_the_records_of_retired_methods():
    from bench.search.run import RETIRED

    saved = {"runs": [], "records": [*RECORDS, rec(RETIRED[0], "1", 0, [(1, 0.9)])]}
    merged = merge(saved, [], {"command": "again"})
    assert merged["records"] == merge({"runs": [], "records": RECORDS}, [], {})["records"]
