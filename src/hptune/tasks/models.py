"""The built-in tasks' models: an MLP and a small 1-D CNN, both plain ``nn.Module``.

Initialisation is torch's default, drawn from the global generator, so
``torch.manual_seed(s)`` before construction fixes the weights.

The CNN normalises with GroupNorm (Wu & He, 2018, arXiv 1803.08494), not BatchNorm, on
purpose: BatchNorm's statistics depend on the batch a forward pass sees, so a batch split into
micro-batches for gradient accumulation (``hptune.training``) trains a different function
than the whole batch would. GroupNorm normalises each sample on its own, which keeps
accumulation exactly equal to one large batch and makes the model's output independent of
the micro-batch size that the memory fitter picks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from hptune.exceptions import ConfigError


class MLP(nn.Module):
    """A multi-layer perceptron: ``depth`` hidden layers of ``width`` units, ReLU, dropout.

    Inputs of any shape ``(N, ...)`` are flattened to ``(N, in_features)``.

    Args:
        in_features: Number of input features (after flattening).
        num_classes: Number of outputs (logits).
        width: Units per hidden layer.
        depth: Number of hidden layers; 0 makes a linear (logistic regression) model.
        dropout: Dropout probability after each hidden layer, in [0, 1).

    Example:
        >>> _ = torch.manual_seed(0)
        >>> MLP(40, 10, width=32, depth=2)(torch.zeros(5, 40)).shape
        torch.Size([5, 10])
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        width: int = 128,
        depth: int = 2,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        _check_int("in_features", in_features, 1)
        _check_int("num_classes", num_classes, 1)
        _check_int("width", width, 1)
        _check_int("depth", depth, 0)
        _check_dropout(dropout)
        layers: list[nn.Module] = [nn.Flatten()]
        features = in_features
        for _ in range(depth):
            layers += [nn.Linear(features, width), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            features = width
        layers.append(nn.Linear(features, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ConvNet1d(nn.Module):
    """A small 1-D CNN: three conv blocks (conv, GroupNorm, ReLU) and a linear head.

    The first block keeps the length; the next two halve it (stride 2), so a length-40
    MNIST-1D signal reaches the head as ``channels x 10`` features.

    Args:
        in_channels: Channels of the input ``(N, in_channels, length)``.
        length: Length of the input signal.
        num_classes: Number of outputs (logits).
        channels: Channels of every conv layer; a multiple of ``groups``.
        groups: GroupNorm groups.
        dropout: Dropout probability before the head, in [0, 1).

    Example:
        >>> _ = torch.manual_seed(0)
        >>> ConvNet1d(1, 40, 10, channels=16)(torch.zeros(5, 1, 40)).shape
        torch.Size([5, 10])
    """

    def __init__(
        self,
        in_channels: int,
        length: int,
        num_classes: int,
        channels: int = 32,
        groups: int = 8,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        for name, value in [("in_channels", in_channels), ("length", length)]:
            _check_int(name, value, 1)
        _check_int("num_classes", num_classes, 1)
        _check_int("groups", groups, 1)
        _check_int("channels", channels, groups)
        if channels % groups:
            raise ConfigError(
                f"model.channels must be a multiple of groups={groups} (GroupNorm), got "
                f"{channels}; use e.g. {groups * max(1, round(channels / groups))}."
            )
        _check_dropout(dropout)
        blocks: list[nn.Module] = []
        out_length = length
        for i, stride in enumerate((1, 2, 2)):
            blocks += [
                nn.Conv1d(in_channels if i == 0 else channels, channels, 5, stride, padding=2),
                nn.GroupNorm(groups, channels),
                nn.ReLU(),
            ]
            out_length = (out_length + 2 * 2 - 5) // stride + 1
        self.features = nn.Sequential(*blocks)
        head: list[nn.Module] = [nn.Flatten()]
        if dropout > 0:
            head.append(nn.Dropout(dropout))
        head.append(nn.Linear(channels * out_length, num_classes))
        self.head = nn.Sequential(*head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def model_options(
    config: Mapping[str, Any], defaults: Mapping[str, Any], task_name: str
) -> dict[str, Any]:
    """The ``config["model"]`` section merged over ``defaults``; unknown keys are errors.

    Args:
        config: A trial's config; its optional ``model`` entry is a mapping of options.
        defaults: The task's default model options; their keys are the valid ones.
        task_name: Named in errors.
    """
    section = config.get("model") or {}
    if not isinstance(section, Mapping):
        raise ConfigError(
            f"model: task {task_name!r} expects a mapping of model options such as "
            f"{dict(defaults)}, got {section!r}."
        )
    unknown = sorted(set(section) - set(defaults))
    if unknown:
        raise ConfigError(
            f"model.{unknown[0]}: not an option of task {task_name!r}; valid options: "
            f"{', '.join(sorted(defaults))}. Fix or remove the key."
        )
    return {**defaults, **section}


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"model.{name} must be an integer >= {minimum}, got {value!r}.")


def _check_dropout(value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ConfigError(f"model.dropout must be a number in [0, 1), got {value!r}.")
