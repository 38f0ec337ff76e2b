"""Hugging Face ``transformers.Trainer``: report to an hptune trial, prune cleanly, and train
with the tuned optimizer and schedule. Needs ``pip install 'hptune[transformers]'``
(transformers and accelerate, which its Trainer needs).

Inside an objective::

    def objective(config, trial):
        transformers.set_seed(trial.seed)
        model = BertForSequenceClassification(BertConfig(...))
        optimizer, scheduler = create_optimizer_and_scheduler(
            model, config, num_training_steps=steps, steps_per_epoch=steps // epochs,
            direction="maximize")
        pruning = PruningCallback(trial, metric="eval_accuracy")
        trainer = Trainer(model, args, train_dataset=train, eval_dataset=val,
                          compute_metrics=accuracy, optimizers=(optimizer, scheduler),
                          callbacks=[pruning])
        trainer.train()
        pruning.raise_if_pruned()
        return max(pruning.values.values())

**Pruning.** An exception raised in a ``TrainerCallback`` leaves ``Trainer.train`` at once,
past its end-of-training hooks; the callback sets ``control.should_training_stop`` instead,
``train`` returns normally, and :meth:`PruningCallback.raise_if_pruned` raises
:class:`~hptune.TrialPruned` afterwards.

**Stepping.** The Trainer steps its scheduler once per optimizer step, after
``gradient_accumulation_steps`` micro-batches, and not when mixed precision skipped the
step (``Trainer._inner_training_loop``); that is the warmup's clock and every step-based
scheduler's. It passes a metric only to a bare ``ReduceLROnPlateau`` (``Trainer._evaluate``),
which it then never steps per optimizer step, so a plateau behind warmup cannot go that way.
Instead :class:`PruningCallback` feeds ``step(metric=...)`` to the schedule at each
evaluation during training (``on_evaluate``), where
:class:`~hptune.training.WarmupScheduler` passes it on once warmup is over: the plateau's
patience counts post-warmup evaluations. A schedule from
:func:`create_optimizer_and_scheduler` that needs a metric refuses to start without the
callback (``trial=None`` will do), and the callback warns when the Trainer will take another
number of optimizer steps than the schedule was sized for.

**Processes.** One process per trial (hptune's workers give each trial one device): only
the main process reports, and its stop flag is not shared with other ranks.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from hptune.exceptions import ConfigError, HptuneError
from hptune.integrations._common import (
    ReportsView,
    TrialReports,
    build_optimizer_and_scheduler,
    check_trial,
    metric_value,
    require,
)
from hptune.training import WarmupScheduler, needs_metric
from hptune.trial import Trial

transformers = require("transformers", "transformers")
require("accelerate", "transformers")
from torch import nn  # noqa: E402  (after the extra's check)
from torch.optim.lr_scheduler import ReduceLROnPlateau  # noqa: E402

__all__ = ["PruningCallback", "create_optimizer_and_scheduler"]

_STEPS = ("epoch", "global_step")


class _CallbackFedScheduler(WarmupScheduler):
    """The schedule for ``transformers.Trainer``: a plateau in it gets its metric from
    :class:`PruningCallback`, so it refuses to be stepped while no such callback is there."""

    metric_callback = False  # set to True by PruningCallback.on_train_begin
    total_steps: int | None = None  # what create_optimizer_and_scheduler sized it for

    def step(self, metric: float | None = None) -> None:
        if metric is None and self.needs_metric and not self.metric_callback:
            raise HptuneError(
                "The config's scheduler follows a metric, which transformers.Trainer does not "
                "pass to it: add callbacks=[PruningCallback(trial, metric='eval_loss')] to the "
                "Trainer (trial may be None)."
            )
        super().step(metric)


class PruningCallback(ReportsView, transformers.TrainerCallback):
    """Report an evaluation metric to an hptune trial at each evaluation during training,
    feed it to a plateau scheduler, and stop a pruned trial through the Trainer's stop flag;
    :meth:`raise_if_pruned` then raises :class:`~hptune.TrialPruned` after ``train()``.

    The step reported is the epoch (1-based, ``eval_strategy="epoch"``; as hptune's recipe
    reports, so a pruner's rungs fall on epochs) or, with ``step="global_step"``, the
    optimizer steps taken (``eval_strategy="steps"``). Evaluations outside ``train()``
    (``trainer.evaluate()`` afterwards) are neither reported nor fed to the scheduler.

    Args:
        trial: The :class:`hptune.Trial` the objective received; None feeds the scheduler
            and records the values without reporting (training a best config).
        metric: The key of the evaluation metrics, e.g. ``"eval_loss"`` or
            ``"eval_accuracy"`` (from ``compute_metrics``); ``"eval_"`` is prefixed when
            missing, as the Trainer does for ``metric_for_best_model``.
        step: ``"epoch"`` (default) or ``"global_step"``.

    Attributes:
        values: ``{step: value}`` as reported, in order.

    Example:
        >>> pruning = PruningCallback(trial, metric="eval_accuracy")  # doctest: +SKIP
        >>> trainer = Trainer(..., optimizers=(opt, sched), callbacks=[pruning])  # doctest: +SKIP
        >>> trainer.train()  # doctest: +SKIP
        >>> pruning.raise_if_pruned()  # doctest: +SKIP
    """

    def __init__(self, trial: Trial | None, metric: str = "eval_loss", *, step: str = "epoch"):
        if not isinstance(metric, str) or not metric:
            raise ConfigError(f"PruningCallback: metric must be a metric name; got {metric!r}.")
        if step not in _STEPS:
            raise ConfigError(
                f"PruningCallback: step must be 'epoch' or 'global_step'; got {step!r}."
            )
        self.metric = metric if metric.startswith("eval_") else f"eval_{metric}"
        self.step = step
        self._reports = TrialReports(
            check_trial(trial, "PruningCallback"),
            "with eval_strategy='steps' pass PruningCallback(..., step='global_step')",
        )
        self._training = False

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._training = True
        scheduler = kwargs.get("lr_scheduler")
        if not isinstance(scheduler, _CallbackFedScheduler):
            return
        scheduler.metric_callback = True
        if scheduler.total_steps != state.max_steps:
            # A cosine sized for other than the run's length ends early or never ends.
            warnings.warn(
                f"create_optimizer_and_scheduler sized the schedule for "
                f"num_training_steps={scheduler.total_steps}, but the Trainer will take "
                f"{state.max_steps} optimizer steps; pass num_training_steps={state.max_steps}.",
                stacklevel=2,
            )

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._training = False

    def on_evaluate(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not self._training:
            return
        metrics = kwargs.get("metrics") or {}
        value = metric_value(
            metrics, self.metric, "PruningCallback", "return it from compute_metrics"
        )
        scheduler = kwargs.get("lr_scheduler")
        # The Trainer steps a bare ReduceLROnPlateau itself (with metric_for_best_model).
        if needs_metric(scheduler) and not isinstance(scheduler, ReduceLROnPlateau):
            scheduler.step(metric=value)
        if state.is_world_process_zero and self._reports.report(self._step(state), value):
            control.should_training_stop = True

    def _step(self, state: Any) -> int:
        if self.step == "global_step":
            return int(state.global_step)
        epoch = float(state.epoch or 0.0)
        if abs(epoch - round(epoch)) > 1e-6:
            raise ConfigError(
                f"PruningCallback: evaluation at epoch {epoch:.3f} is not at an epoch's end; "
                "use eval_strategy='epoch', or PruningCallback(..., step='global_step')."
            )
        return round(epoch)


def create_optimizer_and_scheduler(
    model: nn.Module,
    config: Mapping[str, Any],
    num_training_steps: int,
    *,
    steps_per_epoch: int | None = None,
    direction: str | None = None,
) -> tuple[Any, WarmupScheduler]:
    """The optimizer and schedule a trial config describes, for ``Trainer(optimizers=...)``.

    The optimizer is the config's (``optimizer``, ``lr``) over parameter groups with
    ``weight_decay`` on weights only (no decay on biases and LayerNorm) and the config's
    ``decay_map``; the schedule is ``warmup_epochs`` or ``warmup_steps`` of linear warmup,
    then the config's ``scheduler``, whose length is the optimizer steps left after warmup
    unless the config sets it, exactly as in :func:`hptune.training.train`. The Trainer's
    own ``learning_rate``, ``weight_decay``, ``warmup_steps`` and ``lr_scheduler_type``
    arguments are then unused; ``batch_size``, ``grad_clip`` and ``model`` of the config
    are yours to apply (``per_device_train_batch_size``, ``max_grad_norm``).

    Args:
        model: The model, already on its device.
        config: The trial config.
        num_training_steps: Optimizer steps of the run: ``epochs * steps_per_epoch``, with
            ``steps_per_epoch = ceil(batches per epoch / gradient_accumulation_steps)``.
        steps_per_epoch: Optimizer steps per epoch, for ``warmup_epochs``.
        direction: ``"minimize"`` or ``"maximize"``: the plateau's ``mode`` when the config
            does not set one; required for a plateau scheduler.

    Returns:
        ``(optimizer, scheduler)``; the scheduler is a
        :class:`~hptune.training.WarmupScheduler` (0 warmup steps when the config has none).

    Example:
        >>> opt, sched = create_optimizer_and_scheduler(  # doctest: +SKIP
        ...     model, {"lr": 3e-4, "optimizer": "adamw", "weight_decay": 0.01,
        ...             "warmup_steps": 10, "scheduler": "cosine"}, num_training_steps=100)
        >>> trainer = Trainer(model, args, optimizers=(opt, sched), ...)  # doctest: +SKIP
    """
    optimizer, scheduler = build_optimizer_and_scheduler(
        model,
        config,
        total_steps=num_training_steps,
        steps_per_epoch=steps_per_epoch,
        direction=direction,
        scheduler_class=_CallbackFedScheduler,
    )
    scheduler.total_steps = int(num_training_steps)  # checked against the Trainer's
    return optimizer, scheduler
