"""Tune your own model: the two forms a spec's ``task: module:function`` may take.

1. ``make_task`` — a **factory** (no arguments) returning an :class:`hptune.tasks.Task`: your
   model and your data; hptune's training recipe trains it with the tuned optimizer,
   learning-rate schedule, warmup and batch size. Use this form unless your training loop
   is special.
2. ``objective`` — an **objective** ``(config, trial) -> float`` with its own training loop;
   it must call ``trial.report(epoch, value)`` each epoch so bad trials can be pruned.

Run from this directory (the current directory is importable), with a spec such as::

    name: spirals
    task: custom_model:make_task      # or custom_model:objective
    budget: {trials: 20, epochs: 15}
    space:
      lr: loguniform(1e-3, 1e-1)
      batch_size: choice(32, 64, 128)
      model: {width: choice(32, 64), n_blocks: randint(1, 3)}

``python custom_model.py`` trains one config with the objective and prints its accuracy.
The data are three interleaved spirals in the plane, generated from a fixed seed, so the
splits are the same tensors in every process.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from hptune.tasks import Task, TaskData, model_options
from hptune.trial import Trial

N_CLASSES = 3
SPLITS = (900, 300, 300)  # train, val, test
MODEL_DEFAULTS = {"width": 64, "n_blocks": 2}


def spirals(n_samples: int = sum(SPLITS), seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n_samples`` 2-D points on three noisy spiral arms, shuffled; labels are the arm."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n_samples) % N_CLASSES
    radius = torch.rand(n_samples, generator=g)
    angle = 4.0 * radius + labels * (2 * math.pi / N_CLASSES)
    angle = angle + 0.2 * torch.randn(n_samples, generator=g)
    points = torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], dim=1)
    order = torch.randperm(n_samples, generator=g)
    return points[order], labels[order]


def spiral_data() -> TaskData:
    """Fixed 900/300/300 splits of :func:`spirals`."""
    x, y = spirals()
    a, b = SPLITS[0], SPLITS[0] + SPLITS[1]
    return TaskData(
        TensorDataset(x[:a], y[:a]), TensorDataset(x[a:b], y[a:b]), TensorDataset(x[b:], y[b:])
    )


class ResidualMLP(nn.Module):
    """Your own model: an input layer, ``n_blocks`` residual blocks, a linear head.

    Args:
        width: Hidden units.
        n_blocks: Residual blocks (``x + relu(linear(layer_norm(x)))``).
    """

    def __init__(self, width: int = 64, n_blocks: int = 2) -> None:
        super().__init__()
        self.stem = nn.Linear(2, width)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(width), nn.Linear(width, width), nn.ReLU())
            for _ in range(n_blocks)
        )
        self.head = nn.Linear(width, N_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        for block in self.blocks:
            h = h + block(h)
        return self.head(h)


def build_model(config: dict[str, Any]) -> nn.Module:
    """The model for one trial; options come from the config's ``model`` section."""
    return ResidualMLP(**model_options(config, MODEL_DEFAULTS, "custom_model"))


def make_task() -> Task:
    """Form 1, the factory: hptune's recipe trains this model on this data."""
    return Task(
        name="spirals",
        build_model=build_model,
        datasets=spiral_data,
        num_classes=N_CLASSES,
        input_shape=(2,),
        default_epochs=15,
    )


def objective(config: dict[str, Any], trial: Trial) -> float:
    """Form 2, the objective: a plain training loop of its own; returns val accuracy."""
    torch.manual_seed(trial.seed)
    data = spiral_data()
    model = build_model(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.get("lr", 1e-2))
    loader = DataLoader(data.train, batch_size=config.get("batch_size", 64), shuffle=True)
    accuracy = 0.0
    for epoch in range(config.get("epochs", 15)):
        model.train()
        for x, y in loader:
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
        accuracy = _accuracy(model, data.val)
        trial.report(epoch, accuracy)  # raises TrialPruned when the pruner says stop
    return accuracy


def _accuracy(model: nn.Module, dataset: TensorDataset) -> float:
    model.eval()
    x, y = dataset.tensors
    with torch.no_grad():
        return (model(x).argmax(dim=1) == y).float().mean().item()


if __name__ == "__main__":
    config = {"lr": 1e-2, "batch_size": 64, "model": {"width": 64, "n_blocks": 2}}
    print(f"val accuracy: {objective(config, Trial(0, config, seed=0)):.3f}")
