"""The built-in tasks: ``mnist1d-mlp``, ``mnist1d-cnn``, ``digits-mlp``.

Everything here is a module-level function or a ``functools.partial`` of one, so a built-in
:class:`Task` pickles and can cross a process boundary.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from torch import nn

from hptune.tasks._task import DEFAULT_SPACE, Task
from hptune.tasks.data import load_digits, load_mnist1d
from hptune.tasks.models import MLP, ConvNet1d, model_options

MNIST1D_MLP_MODEL = {"width": 128, "depth": 2, "dropout": 0.0}
MNIST1D_CNN_MODEL = {"channels": 32, "dropout": 0.0}
DIGITS_MLP_MODEL = {"width": 128, "depth": 1, "dropout": 0.0}

# Digits trains on 1077 samples: smaller batches keep a useful number of steps per epoch.
DIGITS_SPACE = {**DEFAULT_SPACE, "batch_size": "choice(16, 32, 64, 128)"}


def _mnist1d_mlp_model(config: Mapping[str, Any]) -> nn.Module:
    return MLP(40, 10, **model_options(config, MNIST1D_MLP_MODEL, "mnist1d-mlp"))


def _mnist1d_cnn_model(config: Mapping[str, Any]) -> nn.Module:
    return ConvNet1d(1, 40, 10, **model_options(config, MNIST1D_CNN_MODEL, "mnist1d-cnn"))


def _digits_mlp_model(config: Mapping[str, Any]) -> nn.Module:
    return MLP(64, 10, **model_options(config, DIGITS_MLP_MODEL, "digits-mlp"))


def mnist1d_mlp() -> Task:
    """MNIST-1D (3000/1000/1000) with an MLP on the flat 40-sample signal."""
    return Task(
        name="mnist1d-mlp",
        build_model=_mnist1d_mlp_model,
        datasets=functools.partial(load_mnist1d, channel_dim=False, task_name="task 'mnist1d-mlp'"),
        num_classes=10,
        input_shape=(40,),
        default_epochs=30,
    )


def mnist1d_cnn() -> Task:
    """MNIST-1D (3000/1000/1000) with a 1-D CNN on ``(1, 40)`` signals."""
    return Task(
        name="mnist1d-cnn",
        build_model=_mnist1d_cnn_model,
        datasets=functools.partial(load_mnist1d, channel_dim=True, task_name="task 'mnist1d-cnn'"),
        num_classes=10,
        input_shape=(1, 40),
        default_epochs=30,
    )


def digits_mlp() -> Task:
    """scikit-learn's 8x8 digits (1077/360/360) with a one-hidden-layer MLP."""
    return Task(
        name="digits-mlp",
        build_model=_digits_mlp_model,
        datasets=functools.partial(load_digits, task_name="task 'digits-mlp'"),
        num_classes=10,
        input_shape=(64,),
        default_epochs=20,
        space=DIGITS_SPACE,
    )


BUILTIN_TASKS = {"mnist1d-mlp": mnist1d_mlp, "mnist1d-cnn": mnist1d_cnn, "digits-mlp": digits_mlp}
