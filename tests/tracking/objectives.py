"""Objectives the tracking tests run, in worker processes too (so: top level, by name).

``curve`` reports ``x * step`` for steps 1..4 and returns ``x``; trial 2 fails, and a trial
is pruned where the study's pruner says so.
"""

from __future__ import annotations


def curve(config, trial):
    if trial.number == 2:
        raise ValueError("trial 2 fails")
    for step in range(1, 5):
        trial.report(step, config["x"] * step)
    trial.set_attr("test_accuracy", 1.0 - config["x"])
    trial.set_attr("device", "cpu")
    return config["x"]
