"""The evaluators of the protocol: live training, replay from a cached table, and the
LCBench surrogate.

All call ``report(epoch, val_accuracy)`` after every epoch (1-based) and stop as soon as it
returns True, so a method's pruner sees the same values on the same path in every mode; in
replay the values are read from the table instead of trained, on LCBench predicted by the
surrogate. Accuracies are fractions (0..1) throughout. Live and replay raise hptune's
``TrialDiverged`` when the config diverged (live: the recipe raised it; replay: the table
says so), after reporting the epochs that finished; the surrogate never diverges.

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


class LCBenchEvaluator:
    """Predicts learning curves with the LCBench surrogate (:mod:`bench.lcbench`).

    ``run`` reports the surrogate's ``val_accuracy`` divided by 100 (a fraction, the
    harness's convention; the surrogate speaks percent) for epochs 1..52, computed in one
    model call per config and cached for the evaluator's life (one search run), so a config
    proposed again, or promoted by a pruner, costs nothing. ``test_accuracy`` is the
    surrogate's ``test_balanced_accuracy`` at epoch 52 (already a fraction): LCBench's
    surrogate has no plain test accuracy. The surrogate is deterministic, so ``seed`` is
    ignored: seeds vary the methods' own randomness only, as in replay.

    Picklable (Ray Tune ships it to its workers): the model session is per process
    (:func:`bench.lcbench.load_surrogate`), not an attribute.

    Args:
        task_id: An OpenML task id the surrogate knows (``bench.lcbench.DEV_TASKS``).

    Example:
        >>> ev = LCBenchEvaluator(7593)
        >>> ev.task, ev.max_epochs
        ('lcbench-7593', 52)
        >>> config = {"batch_size": 64, "learning_rate": 0.01, "momentum": 0.9,
        ...           "weight_decay": 0.001, "num_layers": 2, "max_units": 256, "max_dropout": 0.1}
        >>> round(ev.run(config, seed=0, report=lambda epoch, value: False), 4)
        0.7163
    """

    def __init__(self, task_id: int) -> None:
        from bench.lcbench import MAX_EPOCHS, lcbench_space, load_surrogate

        load_surrogate().code(task_id)  # an unknown task fails here, not mid-search
        self.task_id = int(task_id)
        self.task = f"lcbench-{self.task_id}"
        self.max_epochs = MAX_EPOCHS
        self.space = lcbench_space()
        self._curves: dict[str, dict[str, Any]] = {}

    def curve(self, config: dict[str, Any]) -> dict[str, Any]:
        """The surrogate's 52-epoch curve of ``config`` (cached), in the surrogate's units."""
        key = _key(config)
        if key not in self._curves:
            from bench.lcbench import load_surrogate

            self._curves[key] = load_surrogate().curve(self.task_id, config)
        return self._curves[key]

    def run(self, config: dict[str, Any], seed: int, report: Report) -> float:
        best = -math.inf
        for epoch, value in enumerate(self.curve(config)["val_accuracy"] / 100, start=1):
            best = max(best, float(value))
            if report(epoch, float(value)):
                break
        return best

    def test_accuracy(self, config: dict[str, Any], seed: int) -> float:
        return float(self.curve(config)["test_balanced_accuracy"][-1])

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_curves": {}}  # a worker fills its own cache
