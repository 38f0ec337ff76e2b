"""Objectives and a driver program for the execution tests (real processes need importable
code). Run as ``python -m tests.study._execution_jobs URL NAME STRATEGY JSON_KWARGS``: it
opens (or creates) the study and runs ``optimize(**kwargs)``; exits 130 on
KeyboardInterrupt (Ctrl-C or SIGTERM) after the driver has cleaned up. With ``go_file`` in
the kwargs it prints "ready" and waits for that file before it opens the study;
``strategy_options`` in the kwargs go to ``create_study``."""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

from hptune.space import choice, uniform
from hptune.study import Confirm, create_study

SPACE = {"x": uniform(0.0, 1.0)}
GRID_SPACE = {"a": choice(1, 2, 3, 4), "b": choice(10, 20, 30)}


def sleepy(config, trial):
    """Sleeps 0.3 s; the value is a pure function of the config."""
    time.sleep(0.3)
    return config["x"] if "x" in config else float(config["a"] * config["b"])


def product(config, trial):
    """The grid's a * b, at once."""
    return float(config["a"] * config["b"])


def jittery(config, trial):
    """Sleeps a random (timing-only) while, reporting a curve; value from config and seed."""
    rng = random.Random()
    for step in range(3):
        time.sleep(rng.uniform(0.0, 0.05))
        trial.report(step, config["x"] * (step + 1))
    return (config["x"] - 0.3) ** 2 + (trial.seed % 7) * 1e-6


def slow_best(config, trial):
    """Returns x after 0.1-0.7 s, the longer the better (lower) x: a driver that picked the
    best while another's trial still ran would miss the best."""
    time.sleep(0.1 + 0.6 * (1.0 - config["x"]))
    return config["x"]


def staggered(config, trial):
    """Sleeps 0.2-0.5 s by its config, so that parallel trials do not finish together."""
    time.sleep(0.2 + 0.3 * config["x"])
    return config["x"]


#: A budget of 20 trials with a confirmation of 3 configs x 2 seeds: trials 0..13 are the
#: search's when nothing fails (tests/study/test_confirm.py).
CONFIRM_BUDGET, CONFIRM_SEARCH = 20, 14
_QUALITY = {"a": 0.50, "b": 0.60, "c": 0.70, "d": 0.40, "e": 0.30}


def dies_once(config, trial):
    """Kills its worker the first time it runs (a marker file, named by
    ``HPTUNE_TEST_MARKER``, remembers it); else returns ``config["x"]``."""
    import os

    marker = Path(os.environ["HPTUNE_TEST_MARKER"])
    if not marker.exists():
        marker.write_text("died")
        os._exit(1)
    return config["x"]


def dies_once_when_confirming(config, trial):
    """:func:`lucky`, except that the first fresh-seed trial kills its worker (once: a
    marker file, named by ``HPTUNE_TEST_MARKER``, remembers it)."""
    import os

    marker = Path(os.environ["HPTUNE_TEST_MARKER"])
    if trial.number >= CONFIRM_SEARCH and not marker.exists():
        marker.write_text("died")
        os._exit(1)
    return lucky(config, trial)


def lucky(config, trial):
    """``d`` is the worst config but read lucky in the search (its trials numbered below
    CONFIRM_SEARCH); a seed moves a value by less than 0.01. Reports a rising curve of 5
    steps."""
    bonus = 0.5 if config["x"] == "d" and trial.number < CONFIRM_SEARCH else 0.0
    value = _QUALITY[config["x"]] + bonus + (trial.seed % 1000) / 1e5
    for step in range(5):
        trial.report(step, value * (step + 1) / 5)
    return value


def main(argv: list[str]) -> int:
    url, name, strategy, kwargs = argv[0], argv[1], argv[2], json.loads(argv[3])
    space = GRID_SPACE if strategy == "grid" else SPACE
    go = kwargs.pop("go_file", None)
    strategy_options = kwargs.pop("strategy_options", None)
    if go is not None:  # a barrier: several drivers create or open the study at one moment
        print("ready", flush=True)
        while not Path(go).exists():
            time.sleep(0.01)
    study = create_study(
        space,
        name=name,
        storage=url,
        strategy=strategy,
        strategy_options=strategy_options,
        direction="minimize",
        seed=0,
        load_if_exists=True,
    )
    objective = kwargs.pop("objective", "tests.study._execution_jobs:sleepy")
    if "confirm" in kwargs:
        kwargs["confirm"] = Confirm(**kwargs["confirm"])
    try:
        study.optimize(objective, **kwargs)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        return 130
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))


def slow(config, trial):
    """Sleeps 30 s: only a timeout ends it early."""
    time.sleep(30.0)
    return 0.0
