"""A task large enough to keep a GPU busy, on synthetic data (nothing is downloaded).

``synthetic-resnet``: a ResNet-18 of the CIFAR kind (He et al. 2016, arXiv 1512.03385:
3x3 stem, no max-pool, four stages of two basic blocks, 64 to 512 channels, ~11 M
parameters) on 3x32x32 images drawn from a normal distribution, labelled by a fixed
random linear map of their 4x4 average-pooled pixels, so that there is something to learn
and the three trainers' accuracies can be compared. 20,000 training, 2,000 validation and
2,000 test images (~290 MB as float32), made once per process from seed 0.

Registered by :func:`register` (``bench.trainer`` calls it) as a task of the registry, so
``bench.trainer`` and a spec can name it.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import TensorDataset

from hptune.tasks import Task, TaskData, register_task

NAME = "synthetic-resnet"
SIZES = (20_000, 2_000, 2_000)
CLASSES = 10


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with BatchNorm and a shortcut (a 1x1 convolution on a stride)."""

    def __init__(self, in_channels: int, channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride, bias=False), nn.BatchNorm2d(channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet-18 for 32x32 inputs.

    Example:
        >>> ResNet18(10)(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """

    def __init__(self, num_classes: int, width: int = 64) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()
        )
        blocks, channels = [], width
        for stage, stride in enumerate((1, 2, 2, 2)):
            out = width * 2**stage
            blocks += [BasicBlock(channels, out, stride), BasicBlock(out, out, 1)]
            channels = out
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))
        return self.head(F.adaptive_avg_pool2d(x, 1).flatten(1))


@functools.lru_cache(maxsize=1)
def datasets() -> TaskData:
    """The three splits, made once per process from seed 0."""
    g = torch.Generator().manual_seed(0)
    teacher = torch.randn(3 * 8 * 8, CLASSES, generator=g)

    def split(n: int) -> TensorDataset:
        x = torch.randn(n, 3, 32, 32, generator=g)
        y = (F.avg_pool2d(x, 4).flatten(1) @ teacher).argmax(dim=1)
        return TensorDataset(x, y)

    return TaskData(*(split(n) for n in SIZES))


def build_model(config: Mapping[str, Any]) -> nn.Module:
    return ResNet18(CLASSES)


def task() -> Task:
    return Task(NAME, build_model, datasets, CLASSES, (3, 32, 32), default_epochs=10)


def register() -> None:
    """Register :data:`NAME` (again, harmlessly, if it already is)."""
    register_task(NAME, task, overwrite=True)
