"""The objective a study runs for a spec's task: picklable, so it can travel to worker
processes. It joins a task (``hptune.tasks``) to the training recipe (``hptune.training``),
which is why it lives here, above both.

:class:`TaskObjective` holds only plain data (the task's name, the epochs, the metric and the
``training:`` options). Inside each worker it resolves the task by name once and keeps the
task and its data sets for the life of the process, so a worker running many trials builds
its data once.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from hptune.exceptions import ConfigError
from hptune.metrics import direction_of
from hptune.tasks import Task, TaskData, resolve_task
from hptune.training.options import TrainingOptions
from hptune.training.recipe import train
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

    It holds checked values only (a task name, epochs, a metric, a
    :class:`~hptune.training.options.TrainingOptions`), so nothing is checked again in the
    workers it travels to. The value returned is the **best** validation ``metric`` over the epochs (highest
    accuracy or lowest loss), not the last epoch's: the run's best checkpoint is the model
    one would keep, and the recorded ``test_accuracy`` is that checkpoint's. The pruner sees
    every epoch's value through ``trial.report(epoch, value)`` (1-based epochs). A task that
    is a user objective ``(config, trial) -> float`` is simply called.

    Args:
        task: A registered task name or ``"package.module:function"``
            (see :func:`hptune.tasks.resolve_task`).
        epochs: Epochs per trial; ``None`` means the task's ``default_epochs``.
        metric: ``"val_accuracy"`` or ``"val_loss"`` (its direction picks the best epoch).
        options: How to train (the spec's ``training:`` section).
        output_dir: Folder where ``save_best`` writes ``trial-<number>-best.pt``; required
            with it.

    Example:
        >>> import pickle
        >>> options = TrainingOptions(grad_clip=1.0)
        >>> objective = TaskObjective("digits-mlp", epochs=2, options=options)
        >>> pickle.loads(pickle.dumps(objective)) == objective
        True
    """

    task: str
    epochs: int | None = None
    metric: str = "val_accuracy"
    options: TrainingOptions = dataclasses.field(default_factory=TrainingOptions)
    output_dir: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.task, str) or not self.task:
            raise ConfigError(
                f"TaskObjective needs the task's name (a string, so that it pickles); got "
                f"{self.task!r}. Register a Task object with register_task() and pass its name."
            )
        direction_of(self.metric)
        if not isinstance(self.options, TrainingOptions):
            raise ConfigError(
                f"options must be a TrainingOptions, got {self.options!r}; build one with "
                "TrainingOptions.from_mapping(spec_training_section)."
            )
        if self.options.save_best and self.output_dir is None:
            raise ConfigError(
                "training.save_best=true needs output_dir, the folder the best weights of each "
                "trial are written to; pass TaskObjective(..., output_dir='runs/best')."
            )

    def __call__(self, config: dict[str, Any], trial: Trial) -> float:
        """Train one trial and return its best validation metric."""
        resolved, data = _resolve(self.task)
        if not isinstance(resolved, Task):
            return float(resolved(config, trial))
        save_path = None
        if self.options.save_best:
            os.makedirs(self.output_dir, exist_ok=True)  # type: ignore[arg-type]
            save_path = os.path.join(self.output_dir, f"trial-{trial.number}-best.pt")  # type: ignore[arg-type]
        result = train(
            config,
            resolved,
            epochs=self.epochs,
            seed=trial.seed,
            trial=trial,
            metric=self.metric,
            data=data,
            options=self.options,
            save_path=save_path,
        )
        return result.best_value
