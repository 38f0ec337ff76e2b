"""The objective a study runs for a task: picklable, so it can travel to worker processes.

:class:`TaskObjective` holds only plain data (the task's name, the epochs, the metric and the
``training:`` options). Inside each worker it resolves the task by name once and keeps the
task and its data sets for the life of the process, so a worker running many trials builds
its data once.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

from hptune.exceptions import ConfigError
from hptune.tasks._registry import resolve_task
from hptune.tasks._task import Task
from hptune.tasks.data import TaskData
from hptune.training.recipe import METRICS, TRAINING_OPTIONS, train
from hptune.trial import Trial

__all__ = ["TaskObjective"]

# Per process: task reference -> (the task or objective, its data when it is a Task).
_RESOLVED: dict[str, tuple[Any, TaskData | None]] = {}


def _resolve(name: str) -> tuple[Any, TaskData | None]:
    if name not in _RESOLVED:
        resolved = resolve_task(name)
        data = resolved.datasets() if isinstance(resolved, Task) else None
        _RESOLVED[name] = (resolved, data)
    return _RESOLVED[name]


@dataclasses.dataclass(frozen=True)
class TaskObjective:
    """``objective(config, trial) -> float`` that trains a named task with the recipe.

    The value returned is the **best** validation ``metric`` over the epochs (highest
    accuracy or lowest loss), not the last epoch's: the run's best checkpoint is the model
    one would keep, and the recorded ``test_accuracy`` is that checkpoint's. The pruner sees
    every epoch's value through ``trial.report(epoch, value)`` (1-based epochs). A task that
    is a user objective ``(config, trial) -> float`` is simply called.

    Args:
        task: A registered task name or ``"package.module:function"``
            (see :func:`hptune.tasks.resolve_task`).
        epochs: Epochs per trial; ``None`` means the task's ``default_epochs``.
        metric: ``"val_accuracy"`` or ``"val_loss"``.
        direction: ``"maximize"`` or ``"minimize"``; must fit ``metric``.
        training: The spec's ``training:`` options (keyword options of
            :func:`hptune.training.recipe.train`).
        output_dir: Folder where ``save_best: true`` writes ``trial-<number>-best.pt``;
            required with it.

    Example:
        >>> import pickle
        >>> objective = TaskObjective("digits-mlp", epochs=2, training={"grad_clip": 1.0})
        >>> pickle.loads(pickle.dumps(objective)) == objective
        True
    """

    task: str
    epochs: int | None = None
    metric: str = "val_accuracy"
    direction: str = "maximize"
    training: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    output_dir: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.task, str) or not self.task:
            raise ConfigError(
                f"TaskObjective needs the task's name (a string, so that it pickles); got "
                f"{self.task!r}. Register a Task object with register_task() and pass its name."
            )
        if self.metric not in METRICS:
            raise ConfigError(f"metric must be one of {', '.join(METRICS)}; got {self.metric!r}.")
        if self.direction != METRICS[self.metric]:
            raise ConfigError(
                f"direction={self.direction!r} does not fit metric {self.metric!r}; use "
                f"{METRICS[self.metric]!r}."
            )
        if not isinstance(self.training, Mapping):
            raise ConfigError(f"training must be a mapping of options; got {self.training!r}.")
        unknown = sorted(set(self.training) - set(TRAINING_OPTIONS))
        if unknown:
            raise ConfigError(
                f"Unknown training option(s) {', '.join(map(repr, unknown))}. Valid options: "
                f"{', '.join(TRAINING_OPTIONS)}."
            )
        save_best = self.training.get("save_best", False)
        if save_best is True and self.output_dir is None:
            raise ConfigError(
                "training.save_best=true needs output_dir, the folder the best weights of each "
                "trial are written to; pass TaskObjective(..., output_dir='runs/best')."
            )
        # A plain dict, so that equality and pickling do not depend on the mapping type.
        object.__setattr__(self, "training", dict(self.training))

    def __call__(self, config: dict[str, Any], trial: Trial) -> float:
        """Train one trial and return its best validation metric."""
        resolved, data = _resolve(self.task)
        if not isinstance(resolved, Task):
            return float(resolved(config, trial))
        options = dict(self.training)
        if options.get("save_best") is True:
            os.makedirs(self.output_dir, exist_ok=True)  # type: ignore[arg-type]
            options["save_best"] = os.path.join(
                self.output_dir,  # type: ignore[arg-type]
                f"trial-{trial.number}-best.pt",
            )
        result = train(
            config,
            resolved,
            epochs=self.epochs,
            seed=trial.seed,
            trial=trial,
            metric=self.metric,
            direction=self.direction,
            data=data,
            **options,
        )
        return result.best_value
