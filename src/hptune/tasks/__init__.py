"""Tasks: a model, its data and its metric, named for the CLI and the YAML spec.

Built-in tasks (their data is generated or bundled locally; nothing is downloaded):

==============  ====================================  ==================  ==========
name            data (train / val / test)             model               input
==============  ====================================  ==================  ==========
``mnist1d-mlp`` MNIST-1D, 3000 / 1000 / 1000           MLP 128x2            ``(40,)``
``mnist1d-cnn`` MNIST-1D, 3000 / 1000 / 1000           1-D CNN, GroupNorm   ``(1, 40)``
``digits-mlp``  sklearn digits, 1077 / 360 / 360       MLP 128x1            ``(64,)``
==============  ====================================  ==================  ==========

Each is tuned on ``val_accuracy`` (maximize). Model options go in the config's ``model``
section, e.g. ``model: {width: 256, depth: 3, dropout: 0.1}`` (MLP) or
``model: {channels: 64, dropout: 0.1}`` (CNN); they may be constants or dimensions of the
search space. The built-in data needs ``pip install 'hptune[data]'``.

Your own model: a spec's ``task:`` may name ``package.module:function``. That function is
either

* a **factory**, called with no arguments, returning a :class:`Task`; hptune's training
  recipe then trains it with the tuned optimizer, schedule, warmup and batch size; or
* an **objective** ``(config, trial) -> float`` that trains by itself and calls
  ``trial.report(epoch, value)`` each epoch (so pruning works).

They are told apart by signature: callable with no arguments -> factory; taking
``(config, trial)`` -> objective; anything else is refused with an error that says so.
A factory for a small model of your own (``mytasks.py``, next to the spec)::

    import torch
    from torch import nn
    from torch.utils.data import TensorDataset
    from hptune.tasks import Task, TaskData

    def _data() -> TaskData:
        g = torch.Generator().manual_seed(0)  # fixed splits: same tensors every call
        x = torch.randn(1200, 8, generator=g)
        y = (x[:, 0] * x[:, 1] > 0).long()
        parts = [TensorDataset(x[a:b], y[a:b]) for a, b in [(0, 800), (800, 1000), (1000, 1200)]]
        return TaskData(*parts)

    def _model(config) -> nn.Module:
        width = config.get("model", {}).get("width", 64)
        return nn.Sequential(nn.Linear(8, width), nn.ReLU(), nn.Linear(width, 2))

    def make_task() -> Task:
        return Task(name="xor8", build_model=_model, datasets=_data,
                    num_classes=2, input_shape=(8,), default_epochs=10)

and in the spec: ``task: mytasks:make_task``. ``examples/custom_model.py`` has a runnable
version with both forms. In Python, ``register_task("xor8", make_task)`` makes the short
name work too.

Example:
    >>> from hptune.tasks import get_task, list_tasks
    >>> {"digits-mlp", "mnist1d-cnn", "mnist1d-mlp"} <= set(list_tasks())
    True
    >>> task = get_task("mnist1d-cnn")
    >>> task.input_shape, task.num_classes, task.metric, task.direction
    ((1, 40), 10, 'val_accuracy', 'maximize')
"""

from __future__ import annotations

from hptune.tasks._builtin import digits_mlp, mnist1d_cnn, mnist1d_mlp
from hptune.tasks._registry import (
    Objective,
    classify,
    get_task,
    list_tasks,
    register_task,
    resolve_task,
)
from hptune.tasks._task import DEFAULT_SPACE, Task
from hptune.tasks.data import (
    DIGITS_SPLITS,
    MNIST1D_SPLITS,
    MissingDependencyError,
    TaskData,
    cache_dir,
    clear_caches,
    load_digits,
    load_mnist1d,
    stratified_split,
)
from hptune.tasks.models import MLP, ConvNet1d, model_options

__all__ = [
    "DEFAULT_SPACE",
    "DIGITS_SPLITS",
    "MLP",
    "MNIST1D_SPLITS",
    "ConvNet1d",
    "MissingDependencyError",
    "Objective",
    "Task",
    "TaskData",
    "cache_dir",
    "classify",
    "clear_caches",
    "digits_mlp",
    "get_task",
    "list_tasks",
    "load_digits",
    "load_mnist1d",
    "mnist1d_cnn",
    "mnist1d_mlp",
    "model_options",
    "register_task",
    "resolve_task",
    "stratified_split",
]
