"""bench/ask_time.py: a strategy's time per ask is measured on the asks after N trials."""

from __future__ import annotations

from bench.ask_time import measure


def test_measures_one_time_per_ask_after_the_first_trials():
    ms = measure("multi-fidelity", n_trials=12, n_asks=4, pruner="asha")
    assert len(ms) == 4 and all(0 < m < 10_000 for m in ms)
