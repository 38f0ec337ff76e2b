"""bench/confirm.py: a run's choice is judged on fresh seeds, and its optimism is the gap."""

from __future__ import annotations

import pytest
from bench.confirm import judge, run_study, table


@pytest.mark.slow
def test_a_confirmed_run_is_judged_on_fresh_seeds(tmp_path):
    run = run_study(0, "confirm", tmp_path, quick=True)
    assert run["confirm"] and run["task"] == "digits-mlp"
    # exhausted: the quick search completed fewer configs than confirm's top, and the
    # confirmation re-trained every one there was, with trials of the budget left.
    assert run["stop"] in ("budget", "exhausted")
    # The reported value of a confirmed run is the mean of its 2 fresh seeds.
    assert run["fresh_in_run"] == 2
    judge([run], n_fresh=1)
    assert 0.1 < run["true_val"] <= 1.0 and 0.1 < run["true_test"] <= 1.0
    assert run["optimism"] == pytest.approx(run["reported"] - run["true_val"])
    # The same run's search, choosing by its best reading instead, is judged too.
    assert run["plain_pick"] is not None and 0.1 < run["plain_pick_true_val"] <= 1.0
    assert "| 0 | confirm |" in table([run, {**run, "variant": "plain", "confirm": False}])
