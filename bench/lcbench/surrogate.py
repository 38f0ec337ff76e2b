"""The LCBench surrogate of YAHPO Gym on ``onnxruntime``: a whole learning curve per call.

We do not depend on the ``yahpo-gym`` package (it pins numpy < 2); the model's interface is
small enough to drive directly, and ``tests/bench/test_lcbench.py`` checks this loader
against reference outputs of the model to 1e-3.

The interface (``README.md`` beside this file):

- ``x_cat`` int32 ``[n, 1]``: the task's code in ``encoding.json``;
- ``x_cont`` float32 ``[n, 8]``: raw values in the order of :data:`X_CONT` (the epoch first);
- ``output`` float32 ``[n, 6]``: the metrics of :data:`OUTPUTS`, in the units of
  :data:`UNITS`. **val_accuracy is in percent; the balanced accuracies are fractions.**
  This module keeps the surrogate's units; the benchmark's evaluator converts to the
  harness's convention (fractions, see ``bench.search.evaluators.LCBenchEvaluator``).

One ``InferenceSession`` per process (:func:`load_surrogate`), single-threaded: the
benchmark runs one search per core.

Example:
    >>> model = load_surrogate()
    >>> config = {"batch_size": 64, "learning_rate": 0.01, "momentum": 0.9,
    ...           "weight_decay": 0.001, "num_layers": 2, "max_units": 256, "max_dropout": 0.1}
    >>> curve = model.curve(7593, config)
    >>> curve["val_accuracy"].shape, round(float(curve["val_accuracy"][-1]), 2)
    ((52,), 71.63)
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hptune.exceptions import ConfigError
from hptune.space import Space, loguniform, randint, uniform

HERE = Path(__file__).resolve().parent
MODEL_PATH = HERE / "model.onnx"

#: Columns of ``x_cont``, in the model's order (the README's, confirmed by the reference rows).
X_CONT = (
    "epoch", "batch_size", "learning_rate", "momentum", "weight_decay", "num_layers",
    "max_units", "max_dropout",
)  # fmt: skip
#: The hyperparameters of a config: every ``x_cont`` column but the fidelity.
HYPERPARAMETERS = X_CONT[1:]
#: Columns of ``output``, in the model's order.
OUTPUTS = (
    "time", "val_accuracy", "val_cross_entropy", "val_balanced_accuracy",
    "test_cross_entropy", "test_balanced_accuracy",
)  # fmt: skip
UNITS = {
    "time": "seconds",
    "val_accuracy": "percent",
    "val_cross_entropy": "nats",
    "val_balanced_accuracy": "fraction",
    "test_cross_entropy": "nats",
    "test_balanced_accuracy": "fraction",
}
MAX_EPOCHS = 52


@functools.cache
def config_space() -> dict[str, dict[str, Any]]:
    """``config_space.json``'s hyperparameters by name (the task id and epoch included)."""
    data = json.loads((HERE / "config_space.json").read_text(encoding="utf-8"))
    return {hp["name"]: hp for hp in data["hyperparameters"]}


@functools.cache
def task_codes() -> dict[str, int]:
    """``encoding.json``: OpenML task id (a string) -> ``x_cat`` code."""
    data = json.loads((HERE / "encoding.json").read_text(encoding="utf-8"))
    return {k: int(v) for k, v in data["OpenML_task_id"].items() if k != "#na#"}


def lcbench_space() -> Space:
    """The hptune space of LCBench, read from ``config_space.json`` (so it cannot drift from
    the surrogate's): integers as ``randint`` (both bounds inclusive), floats as
    ``uniform``/``loguniform``, each with the file's log flag. Weight decay is **linear**
    there (1e-5..0.1), as LCBench sampled it.

    Example:
        >>> lcbench_space().to_dict()["weight_decay"]
        'uniform(1e-05, 0.1)'
    """
    hps = config_space()
    mapping: dict[str, Any] = {}
    for name in HYPERPARAMETERS:
        hp = hps[name]
        low, high = _tidy(hp["lower"]), _tidy(hp["upper"])
        if hp["type"] == "uniform_int":
            mapping[name] = randint(int(low), int(high), log=hp["log"])
        elif hp["type"] == "uniform_float":
            mapping[name] = (loguniform if hp["log"] else uniform)(low, high)
        else:  # the file has only these two kinds besides the task id
            raise ConfigError(f"config_space.json: {name!r} has unsupported type {hp['type']!r}.")
    return Space(mapping)


def _tidy(bound: float) -> float:
    """``0.00010000000000000009`` (ConfigSpace's log round trip) -> ``0.0001``."""
    return float(f"{bound:.12g}")


class Surrogate:
    """The ONNX model in one single-threaded ``onnxruntime`` session.

    Args:
        path: The ``.onnx`` file.
    """

    def __init__(self, path: str | Path = MODEL_PATH) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def code(self, task: int | str) -> int:
        """The ``x_cat`` code of OpenML task ``task``; ConfigError names the valid ids."""
        codes = task_codes()
        if str(task) not in codes:
            raise ConfigError(
                f"LCBench has no OpenML task {task!r}; valid: {', '.join(sorted(codes, key=int))}."
            )
        return codes[str(task)]

    def predict(self, task: int | str, x: np.ndarray) -> dict[str, np.ndarray]:
        """Metrics of rows ``x`` (``[n, 8]`` in :data:`X_CONT` order) on ``task``, one model
        call: ``{output name: float64 array [n]}`` in the surrogate's units."""
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != len(X_CONT):
            raise ConfigError(f"x must have shape [n, {len(X_CONT)}], got {list(x.shape)}.")
        x_cat = np.full((len(x), 1), self.code(task), dtype=np.int32)
        (out,) = self.session.run(None, {"x_cat": x_cat, "x_cont": x})
        return {name: out[:, i].astype(np.float64) for i, name in enumerate(OUTPUTS)}

    def curve(
        self, task: int | str, config: Mapping[str, Any], epochs: Sequence[int] | None = None
    ) -> dict[str, np.ndarray]:
        """The metrics of ``config`` at ``epochs`` (default 1..52), one model call."""
        epochs = range(1, MAX_EPOCHS + 1) if epochs is None else epochs
        row = config_row(config)
        x = np.repeat(row[None, :], len(epochs), axis=0)
        x[:, 0] = epochs
        return self.predict(task, x)


def config_row(config: Mapping[str, Any]) -> np.ndarray:
    """``x_cont`` of ``config`` (epoch column 0), checked against the space's bounds."""
    missing = [name for name in HYPERPARAMETERS if name not in config]
    if missing:
        raise ConfigError(f"LCBench config lacks {missing}; it needs {list(HYPERPARAMETERS)}.")
    hps = config_space()
    row = np.zeros(len(X_CONT))
    for i, name in enumerate(HYPERPARAMETERS, start=1):
        value, hp = float(config[name]), hps[name]
        # A relative tolerance: the file's bounds carry rounding noise (1.0000000000000009e-4).
        if not math.isfinite(value) or not (
            hp["lower"] * (1 - 1e-9) <= value <= hp["upper"] * (1 + 1e-9)
        ):
            raise ConfigError(
                f"LCBench {name}={value!r} is outside [{hp['lower']:g}, {hp['upper']:g}]."
            )
        row[i] = value
    return row


@functools.cache
def load_surrogate() -> Surrogate:
    """The process's one :class:`Surrogate` (created on first use)."""
    return Surrogate()
