"""The best known value of each LCBench task, against which regret is measured.

``python -m bench lcbench-best [--n-configs N] [--seed S]`` draws N configs at random from
the surrogate's space (``config_space.json``; one seeded sample, the same configs on every
task), predicts each one's validation accuracy at the last epoch (52) on every task in
batched model calls, and writes ``best_known.json`` beside this file: per task the best
value (percent, the surrogate's unit), the config that reached it, and the best of the
first hundredth and tenth of the sample (how much the rest still added: a check that the
sample is large enough), plus the sample size, the seed, the command and the time it took.

Sampling: floats uniform, or log-uniform where the file says ``log``; integers uniform over
``low..high``, or, where ``log``, log-uniform over ``[low - 0.5, high + 0.5]`` and rounded
(the way Optuna draws a log-scaled integer, so every method's random draws look alike).

Example:
    >>> x = sample_configs(3, seed=0)
    >>> x.shape, bool((x[:, 0] == 52).all())
    ((3, 8), True)
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.lcbench.surrogate import (
    HERE,
    HYPERPARAMETERS,
    MAX_EPOCHS,
    X_CONT,
    config_space,
    load_surrogate,
)

PATH = HERE / "best_known.json"
N_CONFIGS = 1_000_000
SEED = 0
_CHUNK = 20_000  # rows per model call: large enough to amortize, small in memory


def sample_configs(n: int, seed: int) -> np.ndarray:
    """``n`` random rows of ``x_cont`` (epoch column = 52), seeded."""
    rng = np.random.default_rng(seed)
    x = np.empty((n, len(X_CONT)))
    x[:, 0] = MAX_EPOCHS
    for i, name in enumerate(HYPERPARAMETERS, start=1):
        hp = config_space()[name]
        low, high, log = float(hp["lower"]), float(hp["upper"]), bool(hp["log"])
        if hp["type"] == "uniform_int":
            if log:
                u = rng.uniform(math.log(low - 0.5), math.log(high + 0.5), n)
                x[:, i] = np.clip(np.round(np.exp(u)), low, high)
            else:
                x[:, i] = rng.integers(int(low), int(high) + 1, n)
        else:
            x[:, i] = np.exp(rng.uniform(math.log(low), math.log(high), n)) if log else (
                rng.uniform(low, high, n))  # fmt: skip
    return x


def best_on(task: int, x: np.ndarray) -> dict[str, Any]:
    """Best validation accuracy (percent) of rows ``x`` on ``task``, and its config."""
    model = load_surrogate()
    val = np.concatenate(
        [model.predict(task, x[i : i + _CHUNK])["val_accuracy"] for i in range(0, len(x), _CHUNK)]
    )
    best = int(np.argmax(val))
    config = {name: float(x[best, i]) for i, name in enumerate(HYPERPARAMETERS, start=1)}
    for name in ("batch_size", "num_layers", "max_units"):
        config[name] = int(config[name])
    out: dict[str, Any] = {"best_val_accuracy": round(float(val[best]), 4), "config": config}
    for part in (100, 10):  # how much the rest of the sample still added
        n = max(1, len(x) // part)
        out[f"best_of_first_{n}"] = round(float(val[:n].max()), 4)
    return out


def compute(tasks: Sequence[int], n_configs: int, seed: int) -> dict[str, Any]:
    """The best known value of every task in ``tasks`` (the JSON's content)."""
    start = time.perf_counter()
    x = sample_configs(n_configs, seed)
    results = {str(task): best_on(task, x) for task in tasks}
    return {
        "what": "best val_accuracy (percent) at epoch 52 over one seeded random sample",
        "n_configs": n_configs,
        "seed": seed,
        "epoch": MAX_EPOCHS,
        "seconds": round(time.perf_counter() - start, 1),
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()}, one onnxruntime thread",
        "tasks": results,
    }


def load(path: str | Path = PATH) -> dict[str, float]:
    """OpenML task id (str) -> best known validation accuracy, percent."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return {task: float(r["best_val_accuracy"]) for task, r in data["tasks"].items()}


def main(argv: Sequence[str] | None = None) -> int:
    from bench.lcbench import DEV_TASKS

    parser = argparse.ArgumentParser(prog="python -m bench lcbench-best", description=__doc__)
    parser.add_argument("--n-configs", type=int, default=N_CONFIGS)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--out", type=Path, default=PATH, help="where to write the JSON")
    args = parser.parse_args(argv)
    data = compute(DEV_TASKS, args.n_configs, args.seed)
    data["command"] = "python -m bench lcbench-best " + " ".join(argv or [])
    args.out.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}: {len(data['tasks'])} tasks x {args.n_configs} configs in "
          f"{data['seconds']} s")  # fmt: skip
    return 0
