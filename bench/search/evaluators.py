"""The two evaluators of the protocol: live training and replay from a cached table.

Both call ``report(epoch, val_accuracy)`` after every epoch (1-based) and stop as soon as it
returns True, so a method's pruner sees the same values on the same path in both modes; in
replay the values are read from the table instead of trained. Both raise hptune's
``TrialDiverged`` when the config diverged (live: the recipe raised it; replay: the table
says so), after reporting the epochs that finished.

Example:
    >>> from bench.search.table import Table
    >>> from bench.search.space import table_configs
    >>> config = table_configs("mnist1d-cnn")[0]
    >>> table = Table.from_rows("toy", [{"config": config, "curve": [0.5, 0.7, 0.6],
    ...                                  "test_accuracy": 0.65, "diverged": False}])
    >>> ev = ReplayEvaluator(table)
    >>> ev.run(config, seed=0, report=lambda epoch, value: epoch == 2)
    0.7
    >>> ev.test_accuracy(config, seed=0)
    0.65
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from bench.search.protocol import Report
from bench.search.space import space
from bench.search.table import Table, task_data


def _key(config: Mapping[str, Any]) -> str:
    return json.dumps(config, sort_keys=True)


class LiveEvaluator:
    """Trains each config for real with hptune's recipe (CPU, one torch thread).

    The task's datasets are built once per process. The test accuracy of every config that
    ran its full ``max_epochs`` is remembered, so :meth:`test_accuracy` of a chosen config
    costs nothing when the search trained it to the end (whatever the seed it used); a config
    the search only ever pruned is trained afresh with ``seed``. Its ``space`` is the
    common space (:func:`bench.search.space.space`).

    Args:
        task: A built-in task name (``digits-mlp``, ``mnist1d-mlp``, ``mnist1d-cnn``).
        max_epochs: Epochs of a full trial.

    Example:
        >>> ev = LiveEvaluator("digits-mlp", max_epochs=2)  # doctest: +SKIP
        >>> ev.run({"lr": 3e-3}, seed=0, report=lambda e, v: False) > 0.5  # doctest: +SKIP
        True
    """

    def __init__(self, task: str, max_epochs: int) -> None:
        from hptune.tasks import get_task

        self.task = task
        self.max_epochs = max_epochs
        self.space = space()
        self._task = get_task(task)
        self._full_test: dict[str, float] = {}

    def run(self, config: dict[str, Any], seed: int, report: Report) -> float:
        import torch

        from hptune.training.recipe import train
        from hptune.trial import Trial, TrialPruned

        torch.set_num_threads(1)
        best, stopped = -math.inf, False

        def reporter(epoch: int, value: float) -> bool:
            nonlocal best, stopped
            best = max(best, value)
            stopped = bool(report(epoch, value))
            return stopped

        trial = Trial(0, dict(config), seed, reporter)
        try:
            result = train(config, self._task, epochs=self.max_epochs, seed=seed, trial=trial,
                           data=task_data(self.task), device="cpu")  # fmt: skip
        except TrialPruned:
            # Only our own stop is a normal end; anything raised by ``report`` itself (an
            # outer study's TrialPruned, BudgetExhausted) belongs to the caller.
            if not stopped:
                raise
            return best
        self._full_test[_key(config)] = result.test_accuracy
        return result.best_value

    def test_accuracy(self, config: dict[str, Any], seed: int) -> float:
        key = _key(config)
        if key not in self._full_test:
            from bench.search.table import train_curve

            row = train_curve(self.task, config, self.max_epochs, seed)
            self._full_test[key] = row["test_accuracy"]
        return self._full_test[key]


class ReplayEvaluator:
    """Replays learning curves from a :class:`~bench.search.table.Table`.

    A config is first snapped to the nearest table config (categoricals exactly, numeric
    dimensions by normalized distance; see :mod:`bench.search.space`); its cached curve is
    then reported epoch by epoch. The table was trained with one seed, so ``seed`` is
    ignored: in replay, seeds vary the methods' own randomness only. Its ``space`` is the
    common space the table covers (:func:`bench.search.space.space`).

    Args:
        table: The loaded table.
    """

    def __init__(self, table: Table) -> None:
        self.table = table
        self.task = table.task
        self.max_epochs = table.max_epochs
        self.space = space()

    def run(self, config: dict[str, Any], seed: int, report: Report) -> float:
        row = self.table.rows[self.table.snap(config)]
        best = -math.inf
        for epoch, value in enumerate(row["curve"], start=1):
            best = max(best, value)
            if report(epoch, value):
                return best
        if row["diverged"]:
            from hptune.trial import TrialDiverged

            raise TrialDiverged(f"diverged after epoch {len(row['curve'])} (replayed)")
        return best

    def test_accuracy(self, config: dict[str, Any], seed: int) -> float:
        return float(self.table.rows[self.table.snap(config)]["test_accuracy"])
