"""The :class:`Task` value object: what the training recipe needs to train a model."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from hptune._checks import Int, check
from hptune.exceptions import ConfigError
from hptune.metrics import direction_of
from hptune.tasks.data import TaskData

#: The search space a task uses when the spec gives none, in the YAML spec's form (what
#: ``yaml.safe_load`` returns for a ``space:`` block): dimensions as strings, a conditional
#: choice as ``{"choice": {branch: sub-space}}``. Strings, so this module needs no space code.
DEFAULT_SPACE: dict[str, Any] = {
    "lr": "loguniform(1e-4, 1e-1)",
    "batch_size": "choice(32, 64, 128, 256)",
    "weight_decay": "loguniform(1e-6, 1e-2)",
    "warmup_epochs": "randint(0, 3)",
    "optimizer": {
        "choice": {
            "adam": {"beta1": "uniform(0.85, 0.95)"},
            "sgd": {"momentum": "uniform(0.8, 0.99)", "nesterov": "choice(true, false)"},
        }
    },
    "scheduler": {
        "choice": {
            "cosine": {},
            "plateau": {"factor": "choice(0.1, 0.5)", "patience": "randint(2, 8)"},
        }
    },
}


@dataclasses.dataclass(frozen=True)
class Task:
    """A model, its data and how it is judged: what the training recipe trains per config.

    The recipe (``hptune.training.recipe``) calls ``build_model(config)`` and
    ``datasets()`` once per trial, trains with ``loss_fn`` for the trial's epochs (the
    spec's ``budget.epochs``, else ``default_epochs``) and reports ``metric`` on the
    validation split after each epoch. The test split is never used for tuning.

    Args:
        name: Short name, shown in reports.
        build_model: ``build_model(config) -> nn.Module``, called with the trial's whole
            config (plain nested dict); by convention model options live in
            ``config["model"]``. Seed-dependent: the recipe seeds torch first.
        datasets: ``datasets() -> TaskData`` with fixed train/val/test splits. It should be
            deterministic and cheap on repeated calls (cache what is slow to build).
        num_classes: Number of classes; the model outputs that many logits.
        input_shape: Shape of one sample, without the batch dimension, e.g. ``(40,)``.
        default_epochs: Epochs to train when the spec sets no budget.
        metric: ``"val_accuracy"`` (argmax of the logits equals the label) or ``"val_loss"``.
        loss_fn: ``loss_fn(logits, targets) -> scalar``, the *mean* over the batch (as
            ``F.cross_entropy``, the default, gives); the recipe weights it by micro-batch size so
            that gradient accumulation stays exact.
        space: The task's default search space (see :data:`DEFAULT_SPACE` for the form);
            ``None`` uses :data:`DEFAULT_SPACE`.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from torch.utils.data import TensorDataset
        >>> part = TensorDataset(torch.randn(8, 3), torch.arange(8) % 2)
        >>> task = Task(
        ...     name="toy",
        ...     build_model=lambda config: nn.Linear(3, 2),
        ...     datasets=lambda: TaskData(part, part, part),
        ...     num_classes=2,
        ...     input_shape=(3,),
        ... )
        >>> task.direction, task.build_model({})(torch.zeros(1, 3)).shape
        ('maximize', torch.Size([1, 2]))
    """

    name: str
    build_model: Callable[[Mapping[str, Any]], nn.Module]
    datasets: Callable[[], TaskData]
    num_classes: int
    input_shape: tuple[int, ...]
    default_epochs: int = 20
    metric: str = "val_accuracy"
    # The function, not an nn.CrossEntropyLoss module: the same numbers, without a module
    # call's hook machinery (a few us) on every step.
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy
    space: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ConfigError(f"Task.name must be a non-empty string, got {self.name!r}.")
        for field in ("build_model", "datasets", "loss_fn"):
            if not callable(getattr(self, field)):
                raise ConfigError(
                    f"Task {self.name!r}: {field} must be callable, got {getattr(self, field)!r}."
                )
        check(f"Task {self.name!r}: num_classes", self.num_classes, Int(low=1))
        check(f"Task {self.name!r}: default_epochs", self.default_epochs, Int(low=1))
        shape = tuple(self.input_shape) if isinstance(self.input_shape, (list, tuple)) else None
        if not shape or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in shape):
            raise ConfigError(
                f"Task {self.name!r}: input_shape must be a non-empty tuple of positive ints "
                f"(one sample, no batch dimension), got {self.input_shape!r}."
            )
        object.__setattr__(self, "input_shape", shape)
        try:
            direction_of(self.metric)
        except ConfigError as exc:
            raise ConfigError(f"Task {self.name!r}: {exc}") from None

    @property
    def direction(self) -> str:
        """``"maximize"`` for ``val_accuracy``, ``"minimize"`` for ``val_loss``."""
        return direction_of(self.metric)

    def default_space(self) -> dict[str, Any]:
        """A fresh copy of the task's default search space (safe to edit)."""
        return copy.deepcopy(dict(self.space if self.space is not None else DEFAULT_SPACE))
