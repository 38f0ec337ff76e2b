"""Replay tables: full validation curves of a dense grid of configs, built once and cached.

``python -m bench replay-build --task digits-mlp [--quick]`` trains every config of
:func:`bench.search.space.table_configs` for the task's ``MAX_EPOCHS`` with hptune's recipe
(seed 0, CPU, one torch thread per process, two processes) and writes
``bench/data/<task>-curves.json.gz``: per config its validation-accuracy curve (one value per
epoch), the test accuracy of its best-validation epoch and whether it diverged; plus the
exact command, the build time, the versions, and the **oracle**: the table config with the
best validation accuracy at any epoch (ties: the first in grid order).

A diverged config (the recipe raises ``TrialDiverged``) keeps the curve up to its last full
epoch; replay then raises ``TrialDiverged`` after those epochs, as the live run does.

Example:
    >>> table = Table.from_rows("toy", [{"config": c, "curve": [0.5, 0.7], "test_accuracy":
    ...     0.6, "diverged": False} for c in table_configs("mnist1d-cnn")[:1]])
    >>> table.oracle["best_val"]
    0.7
"""

from __future__ import annotations

import datetime
import gzip
import json
import math
import multiprocessing
import platform
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.search.space import MAX_EPOCHS, features, table_configs

DATA_DIR = Path(__file__).resolve().parents[1] / "data"

_DATA_CACHE: dict[str, Any] = {}


def table_path(task: str) -> Path:
    """Where the replay table of ``task`` lives."""
    return DATA_DIR / f"{task}-curves.json.gz"


def task_data(task: str) -> Any:
    """The task's splits, built once per process (the live evaluator shares this cache)."""
    if task not in _DATA_CACHE:
        from hptune.tasks import get_task

        _DATA_CACHE[task] = get_task(task).datasets()
    return _DATA_CACHE[task]


def train_curve(task: str, config: Mapping[str, Any], epochs: int, seed: int = 0) -> dict:
    """Train ``config`` for ``epochs``; its curve, best-val test accuracy and divergence."""
    import torch

    from hptune.tasks import get_task
    from hptune.training.recipe import train
    from hptune.trial import Trial, TrialDiverged

    torch.set_num_threads(1)
    curve: list[float] = []
    trial = Trial(0, dict(config), seed, lambda epoch, value: curve.append(value) or False)
    diverged = False
    try:
        train(config, get_task(task), epochs=epochs, seed=seed, trial=trial,
              data=task_data(task), device="cpu")  # fmt: skip
    except TrialDiverged:
        diverged = True
    # The recipe records the best-val epoch's test accuracy on the trial each epoch; a run
    # that diverged before its first epoch has none: chance level stands in for it.
    test = float(trial.attrs.get("test_accuracy", 0.1))
    return {"config": dict(config), "curve": curve, "test_accuracy": test, "diverged": diverged}


def _job(args: tuple[str, dict[str, Any], int]) -> dict:
    return train_curve(*args)


def build_table(task: str, quick: bool = False, n_workers: int = 2) -> Path:
    """Train the whole grid of ``task`` and write its table; returns the file's path."""
    configs = table_configs(task, quick=quick)
    epochs = MAX_EPOCHS[task] // 2 if quick else MAX_EPOCHS[task]
    command = "python -m bench replay-build --task " + task + (" --quick" if quick else "")
    print(f"{command}: {len(configs)} configs x {epochs} epochs", flush=True)
    start = time.perf_counter()
    rows: list[dict] = []
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(n_workers) as pool:
        for row in pool.imap(_job, [(task, c, epochs) for c in configs], chunksize=4):
            rows.append(row)
            if len(rows) % 50 == 0:
                elapsed = time.perf_counter() - start
                print(f"  {len(rows)}/{len(configs)} in {elapsed:.0f} s", flush=True)
    table = Table.from_rows(task, rows)
    meta = {
        "command": command,
        "quick": quick,
        "build_seconds": round(time.perf_counter() - start, 1),
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()}, {multiprocessing.cpu_count()} CPU cores, "
        f"{n_workers} processes, one torch thread each, CPU only",
        "versions": _versions(),
        "train_seed": 0,
    }
    path = table_path(task)
    table.save(path, meta)
    print(f"wrote {path} ({meta['build_seconds']} s); oracle {table.oracle}", flush=True)
    return path


def _versions() -> dict[str, str]:
    import optuna
    import torch

    import hptune

    return {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "optuna": optuna.__version__,
        "hptune": getattr(hptune, "__version__", "?"),
    }


class Table:
    """A loaded replay table: rows, the snapping index and the oracle.

    Args:
        task: The task's name.
        rows: Dicts with ``config``, ``curve``, ``test_accuracy`` and ``diverged``.
        meta: Build facts (command, time, versions); empty for in-memory tables.
    """

    def __init__(self, task: str, rows: Sequence[Mapping[str, Any]], meta: Mapping | None = None):
        if not rows:
            raise ValueError(f"a replay table for {task!r} needs at least one row; got none.")
        self.task = task
        self.rows = [dict(r) for r in rows]
        self.meta = dict(meta or {})
        self.max_epochs = max(len(r["curve"]) for r in self.rows)
        self._index: dict[tuple, list[tuple[tuple[float, ...], int]]] = {}
        for i, row in enumerate(self.rows):
            key, point = features(row["config"])
            self._index.setdefault(key, []).append((point, i))
        best = max(range(len(self.rows)), key=lambda i: (_best(self.rows[i]), -i))
        self.oracle = {
            "index": best,
            "best_val": _best(self.rows[best]),
            "test_accuracy": self.rows[best]["test_accuracy"],
            "config": self.rows[best]["config"],
        }

    @classmethod
    def from_rows(cls, task: str, rows: Sequence[Mapping[str, Any]]) -> Table:
        return cls(task, rows)

    @classmethod
    def load(cls, path: str | Path) -> Table:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            data = json.load(f)
        return cls(data["task"], data["rows"], data.get("meta"))

    def save(self, path: str | Path, meta: Mapping[str, Any]) -> None:
        self.meta = dict(meta)
        data = {"task": self.task, "meta": self.meta, "oracle": self.oracle, "rows": self.rows}
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        # mtime=0: the same table gives the same bytes, so git sees only real changes.
        with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
            f.write(json.dumps(data, separators=(",", ":")).encode("utf-8"))

    def snap(self, config: Mapping[str, Any]) -> int:
        """Index of the nearest table row (see :mod:`bench.search.space`)."""
        key, point = features(config)
        candidates = self._index.get(key)
        if not candidates:
            raise KeyError(f"no table config of {self.task!r} has the categorical values {key}")
        return min(candidates, key=lambda c: (math.dist(c[0], point), c[1]))[1]


def _best(row: Mapping[str, Any]) -> float:
    return max(row["curve"], default=0.0)
