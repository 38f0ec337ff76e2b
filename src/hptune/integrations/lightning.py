"""PyTorch Lightning: report to an hptune trial, prune cleanly, and train with the tuned
optimizer and schedule. Needs ``pip install 'hptune[lightning]'`` (the ``lightning``
package, 2.4 or later; the older ``pytorch_lightning`` package is not supported).

Inside an objective::

    def objective(config, trial):
        lightning.seed_everything(trial.seed)
        pruning = PruningCallback(trial, monitor="val_acc")
        trainer = lightning.Trainer(max_epochs=10, callbacks=[pruning], deterministic=True)
        trainer.fit(MyModule(config), datamodule)  # its configure_optimizers calls ours
        pruning.raise_if_pruned()
        return max(pruning.values.values())

**Pruning.** Raising :class:`~hptune.TrialPruned` inside a Lightning hook is caught by
``Trainer.fit``'s error handling, which marks the run interrupted, calls every
``on_exception`` hook, finalizes the loggers as "failed" and skips the ``teardown`` hooks
(``lightning.pytorch.trainer.call._call_and_handle_interrupt``); with several processes
the ranks that did not raise wait at their next collective. Optuna's
``PyTorchLightningPruningCallback`` meets the same problem in DDP by asking for a
``check_pruned()`` call after ``fit``. Here it is always so: the callback sets
``trainer.should_stop`` (broadcast from rank 0, so that every rank stops after the same
epoch), ``fit`` ends normally, and :meth:`PruningCallback.raise_if_pruned` raises afterwards.

**Stepping.** :func:`configure_optimizers` registers the schedule with Lightning twice, as
two entries of the same object. The first, ``interval="step"``, makes Lightning call
``step()`` after every optimizer step, i.e. once per ``accumulate_grad_batches``
micro-batches (``_TrainingEpochLoop.update_lr_schedulers``): that is the warmup's clock and
every step-based scheduler's. The second exists only for a plateau scheduler: flagged
``reduce_on_plateau`` with the ``monitor``, ``interval="epoch"``, so Lightning calls
``step(metric)`` once per epoch, after that epoch's validation (``FitLoop.on_advance_end``),
and raises if the monitor was never logged. A plateau entry with ``interval="step"`` would
not do: Lightning would feed it the last logged value after every batch, stale in between
validations. :class:`~hptune.training.WarmupScheduler` passes the metric on only once
warmup is over, so the plateau's patience counts post-warmup epochs.

**Processes.** With ``study.optimize(n_workers=2)`` each trial runs in a worker process, and
Lightning inside it on one device (``devices=1``), which is how hptune runs trials.
``strategy="ddp_spawn"`` (and ``"ddp_fork"``) run the callback in child processes that
cannot reach the trial: :class:`PruningCallback` refuses to start there.
"""

from __future__ import annotations

import math
import os
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

pl = require("lightning.pytorch", "lightning")
from torch.optim.lr_scheduler import LRScheduler  # noqa: E402  (after the extra's check)

__all__ = ["PruningCallback", "configure_optimizers"]

_STEPS = ("epoch", "global_step")


class PruningCallback(ReportsView, pl.Callback):
    """Report the monitored metric to an hptune trial after every validation; stop a pruned
    trial by Lightning's own stop flag, then raise :class:`~hptune.TrialPruned` from
    :meth:`raise_if_pruned` after ``Trainer.fit`` has returned.

    The step reported is the 1-based epoch (as hptune's recipe reports, so a pruner's rungs
    fall on epochs), or with ``step="global_step"`` the optimizer steps taken, for
    validation more often than once per epoch (``val_check_interval < 1``). Neither the
    sanity check nor ``trainer.validate()`` is reported. Once pruned, later validations
    (Lightning trains on to ``min_epochs`` when it is set) are neither reported nor
    recorded.

    Args:
        trial: The :class:`hptune.Trial` the objective received; None records the values
            without reporting (training a best config outside a study).
        monitor: The key of ``trainer.callback_metrics`` to report, logged with
            ``self.log(monitor, ...)`` in the validation step or epoch end.
        step: ``"epoch"`` (default) or ``"global_step"``.

    Attributes:
        values: ``{step: value}`` as reported, in order.

    Example:
        >>> pruning = PruningCallback(trial, monitor="val_acc")  # doctest: +SKIP
        >>> trainer = lightning.Trainer(max_epochs=5, callbacks=[pruning])  # doctest: +SKIP
        >>> trainer.fit(model, datamodule)  # doctest: +SKIP
        >>> pruning.raise_if_pruned()  # doctest: +SKIP
        >>> best = max(pruning.values.values())  # doctest: +SKIP
    """

    def __init__(self, trial: Trial | None, monitor: str, *, step: str = "epoch") -> None:
        super().__init__()
        if not isinstance(monitor, str) or not monitor:
            raise ConfigError(f"PruningCallback: monitor must be a metric name; got {monitor!r}.")
        if step not in _STEPS:
            raise ConfigError(
                f"PruningCallback: step must be 'epoch' or 'global_step'; got {step!r}."
            )
        self.monitor = monitor
        self.step = step
        self._reports = TrialReports(
            check_trial(trial, "PruningCallback"),
            "with val_check_interval < 1 pass PruningCallback(..., step='global_step')",
        )
        self._pid = os.getpid()

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        if self._reports.trial is not None and os.getpid() != self._pid:
            raise HptuneError(
                f"PruningCallback runs in process {os.getpid()}, not in the one that created "
                f"it ({self._pid}), as strategy='ddp_spawn' or 'ddp_fork' do: the trial's "
                "reports cannot reach the study from here. Train each trial on one device."
            )

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        # Not the sanity check, nor trainer.validate() outside fit.
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        pruned = False
        if trainer.is_global_zero:
            value = metric_value(
                trainer.callback_metrics,
                self.monitor,
                "PruningCallback",
                "log it with self.log(...) in validation_step, or pass another monitor",
            )
            step = trainer.current_epoch + 1 if self.step == "epoch" else trainer.global_step
            pruned = self._reports.report(step, value)
        # Every rank must stop after the same epoch, or the others would wait for it forever.
        if trainer.strategy.broadcast(pruned, src=0):
            trainer.should_stop = True


class _LightningWarmupScheduler(WarmupScheduler, LRScheduler):
    """A :class:`~hptune.training.WarmupScheduler` that Lightning takes as a torch scheduler.

    Lightning refuses a scheduler that is not a torch ``LRScheduler`` unless the module
    overrides ``lr_scheduler_step`` (``lightning.pytorch.core.optimizer.
    _validate_scheduler_api``). Only the base class is added: ``LRScheduler.__init__`` is
    never called (it would reset the LRs), and everything Lightning uses (``step``,
    ``state_dict``, ``load_state_dict``, ``optimizer``) is WarmupScheduler's.
    """


def configure_optimizers(
    module: Any,
    config: Mapping[str, Any],
    *,
    monitor: str | None = None,
    direction: str | None = None,
    total_steps: int | None = None,
    steps_per_epoch: int | None = None,
) -> tuple[list[Any], list[dict[str, Any]]]:
    """What ``LightningModule.configure_optimizers`` returns, built from a trial config.

    The optimizer is the config's (``optimizer``, ``lr``) over parameter groups with
    ``weight_decay`` on weights only (no decay on biases and norm layers) and the config's
    ``decay_map``; the schedule is ``warmup_epochs`` or ``warmup_steps`` of linear warmup,
    then the config's ``scheduler``, whose length (cosine ``T_max``, linear ``total_iters``,
    onecycle ``total_steps``) is the optimizer steps left after warmup unless the config
    sets it, exactly as in :func:`hptune.training.train`. ``batch_size``, ``grad_clip`` and
    ``model`` are yours to apply (your DataLoader, ``Trainer(gradient_clip_val=...)``).

    How Lightning steps it (every optimizer step; a plateau once per epoch, after
    validation, with ``monitor``) is described in the module docstring.

    Args:
        module: The LightningModule (call this from its ``configure_optimizers``).
        config: The trial config.
        monitor: The logged metric a plateau scheduler follows; required for one, ignored
            otherwise, so one call serves a space that chooses among schedulers.
        direction: ``"minimize"`` or ``"maximize"``: the plateau's ``mode`` when the config
            does not set one; required for a plateau scheduler.
        total_steps: Optimizer steps of the run; default
            ``trainer.estimated_stepping_batches`` (max_epochs, max_steps and
            ``accumulate_grad_batches`` taken into account).
        steps_per_epoch: Optimizer steps per epoch, for ``warmup_epochs``; default from
            the trainer's training batches and ``accumulate_grad_batches``.

    Returns:
        ``([optimizer], [lr_scheduler_config, ...])``, one of the forms Lightning accepts.

    Raises:
        ConfigError: A bad config, a plateau without ``monitor`` or ``direction``, or no
            trainer to take the step counts from.

    Example:
        >>> class Model(lightning.LightningModule):  # doctest: +SKIP
        ...     def configure_optimizers(self):
        ...         return configure_optimizers(self, self.hparams.config, monitor="val_loss",
        ...                                     direction="minimize")
    """
    if total_steps is None or steps_per_epoch is None:
        total_steps, steps_per_epoch = _steps_from_trainer(module, total_steps, steps_per_epoch)
    optimizer, scheduler = build_optimizer_and_scheduler(
        module,
        config,
        total_steps=total_steps,
        steps_per_epoch=steps_per_epoch,
        direction=direction,
        scheduler_class=_LightningWarmupScheduler,
    )
    entries = [{"scheduler": scheduler, "interval": "step", "frequency": 1}]
    if needs_metric(scheduler):
        if not monitor:
            raise ConfigError(
                "configure_optimizers: the config's plateau scheduler follows a logged "
                "metric; pass monitor='val_loss' (or the metric you log) and direction."
            )
        trainer = _trainer(module)
        every = getattr(trainer, "check_val_every_n_epoch", None) or 1
        # Named, because LearningRateMonitor logs the LR once per entry: this second
        # column is the same LR as the first.
        name = f"lr-{type(optimizer).__name__}-plateau"
        entries.append(
            {"scheduler": scheduler, "interval": "epoch", "frequency": every, "name": name,
             "reduce_on_plateau": True, "monitor": monitor, "strict": True}
        )  # fmt: skip
    return [optimizer], entries


def _trainer(module: Any) -> Any:
    try:
        return module.trainer
    except RuntimeError:  # Lightning: "... is not attached to a `Trainer`"
        return None


def _steps_from_trainer(
    module: Any, total_steps: int | None, steps_per_epoch: int | None
) -> tuple[Any, int | None]:
    trainer = _trainer(module)
    if trainer is None:
        if total_steps is None:
            raise ConfigError(
                "configure_optimizers: the module is not attached to a Trainer, so the "
                "number of steps is unknown; call it from configure_optimizers during fit, "
                "or pass total_steps=..."
            )
        return total_steps, steps_per_epoch
    # estimated_stepping_batches loads the train DataLoader when it has not been loaded yet.
    estimated = trainer.estimated_stepping_batches
    if total_steps is None:
        total_steps = estimated
    batches = trainer.num_training_batches
    if steps_per_epoch is None and math.isfinite(batches) and batches > 0:
        # Lightning steps on an epoch's last batch even when its accumulation is short.
        steps_per_epoch = math.ceil(batches / trainer.accumulate_grad_batches)
    return total_steps, steps_per_epoch
