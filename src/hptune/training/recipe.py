"""The training recipe: one trial's config turned into a trained model and a metric.

:func:`train` composes the toolkit — :func:`~hptune.training.optim.create_optimizer` over
merged parameter groups, :func:`~hptune.training.schedulers.create_lr_scheduler` behind a
warmup, :func:`~hptune.training.batch_size.plan_batch` and the exact
:class:`~hptune.training.accumulation.GradientAccumulator` — into one loop that reads top
to bottom. Built-in tasks and ``package.module:function`` task factories are trained by it;
:class:`hptune.runner.TaskObjective` is the picklable glue that hands it to a study.

The trial config (keys in :data:`CONFIG_KEYS`) holds the hyperparameters being tuned; the
spec's ``training:`` section (:class:`~hptune.training.options.TrainingOptions`) holds how
to train: device, micro-batch cap, AMP, clipping, divergence rule.
:func:`lr_find` runs the LR range test on a task configured the same way.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn

from hptune._checks import Int, check
from hptune.exceptions import ConfigError
from hptune.metrics import METRICS, TEST_ACCURACY, direction_of
from hptune.training._batch_growth import batch_sizes, warmup_steps_over
from hptune.training._lr_find import lr_find
from hptune.training._recipe_config import (
    CONFIG_KEYS,
    RecipeConfig,
    build_optimizer,
    parse_config,
    scaled_lr,
    scheduler_options,
    warmup_steps,
)
from hptune.training._recipe_parts import (
    BestEpoch,
    DivergenceWatch,
    autocast,
    evaluate,
    fit_micro_batch,
    make_loader,
    resolve_device,
    seed_everything,
    splits_on,
)
from hptune.training._warmup import steps_per_optimizer_step
from hptune.training.accumulation import GradientAccumulator
from hptune.training.batch_size import plan_batch
from hptune.training.options import TrainingOptions
from hptune.training.schedulers import create_lr_scheduler, needs_metric
from hptune.trial import Trial, TrialDiverged, TrialPruned

__all__ = [
    "CONFIG_KEYS",
    "METRICS",
    "RecipeConfig",
    "TrainResult",
    "TrainingOptions",
    "lr_find",
    "parse_config",
    "train",
]

logger = logging.getLogger("hptune.training.recipe")


class TaskLike(Protocol):
    """What :func:`train` needs of a task (:class:`hptune.tasks.Task` has it all)."""

    @property
    def build_model(self) -> Callable[[Mapping[str, Any]], nn.Module]: ...
    @property
    def datasets(self) -> Callable[[], Any]: ...
    @property
    def loss_fn(self) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]: ...
    @property
    def default_epochs(self) -> int: ...


@dataclass(frozen=True)
class TrainResult:
    """What one run of :func:`train` produced. "Best" is the epoch with the best validation
    ``metric`` (the earliest of ties); test figures are those of that epoch's model, measured
    once when the run ends (also when it is pruned or diverges), on a copy of its weights.

    Attributes:
        best_value: The best validation metric over the epochs: what a study optimizes.
        final_value: The validation metric after the last epoch.
        history: One dict per epoch: ``epoch`` (1-based), ``train_loss``, ``val_loss``,
            ``val_accuracy``, ``lr`` (of the first parameter group, at the epoch's last
            optimizer step), and with ``batch_growth`` the epoch's ``batch_size``.
        model: The model after the last epoch.
        best_state: The best epoch's ``state_dict`` (CPU tensors) when ``save_best`` or
            ``save_path`` is set.
        attrs: The facts recorded on the trial (``test_accuracy``, ``best_epoch``, batch
            plan, ``optimizer_steps``, ``device``, ...); JSON-able.
    """

    best_value: float
    final_value: float
    history: tuple[dict[str, float], ...]
    model: nn.Module = field(repr=False)
    best_state: dict[str, torch.Tensor] | None = field(repr=False)
    attrs: dict[str, Any]

    @property
    def test_accuracy(self) -> float:
        """Test accuracy of the best-validation epoch's model."""
        return float(self.attrs[TEST_ACCURACY])


def _options(options: TrainingOptions | None, overrides: dict[str, Any]) -> TrainingOptions:
    """``options`` with the keyword ``overrides`` applied, checked once here."""
    if options is not None and not isinstance(options, TrainingOptions):
        raise ConfigError(
            f"options must be a TrainingOptions, got {options!r}; build one with "
            "TrainingOptions.from_mapping({...}) or pass the options as keywords."
        )
    if not overrides:
        return options or TrainingOptions()
    base = options.to_mapping() if options is not None else {}
    return TrainingOptions.from_mapping({**base, **overrides})


def _micro_cap(
    model: nn.Module, task: TaskLike, train_set: Any, device: torch.device, largest: int,
    max_micro_batch: int | None, fit: bool,
) -> int:  # fmt: skip
    """The micro-batch cap for effective batches up to ``largest``: ``max_micro_batch``,
    lowered to what fits in GPU memory if asked."""
    cap = min(max_micro_batch or largest, largest)
    if fit and device.type == "cuda":
        cap = min(cap, fit_micro_batch(model, train_set, task.loss_fn, device, cap))
    elif fit:
        logger.info("fit_micro_batch is ignored on %s: no memory limit to fit", device)
    return cap


@dataclass(frozen=True)
class _BatchSchedule:
    """The micro-batch cap, the effective batch's cap, and each epoch's effective batch and
    optimizer steps."""

    micro: int
    cap: int
    sizes: list[int]
    steps: list[int]


def _batch_schedule(
    cfg: RecipeConfig, opts: TrainingOptions, model: nn.Module, task: TaskLike, train_set: Any,
    device: torch.device, epochs: int,
) -> _BatchSchedule:  # fmt: skip
    """Fit the micro-batch to the largest batch the run will use, then plan every epoch."""
    n_train = len(train_set)
    if n_train == 0:
        raise ConfigError("the task's training split is empty; it needs at least one sample.")
    growth = cfg.batch_growth
    largest = cfg.batch_size
    if growth is not None:  # the batch may grow to its cap (the split's size for "memory")
        largest = max(largest, growth.cap(micro_cap=None, n_samples=n_train))
    micro = _micro_cap(
        model, task, train_set, device, largest, opts.max_micro_batch, opts.fit_micro_batch
    )
    cap = growth.cap(micro, n_train) if growth is not None else cfg.batch_size
    sizes = batch_sizes(cfg.batch_size, cap, growth, epochs)
    return _BatchSchedule(micro, cap, sizes, [-(-n_train // size) for size in sizes])


def _forward(
    model: nn.Module, loss_fn: Callable[..., torch.Tensor], batch: Any, device: torch.device,
    amp: bool,
) -> torch.Tensor:  # fmt: skip
    """The mean loss of ``batch`` (inputs, targets) on ``device``."""
    inputs, targets = batch[0].to(device), batch[1].to(device)
    if not amp:  # entering even a disabled autocast costs ~3 us
        return loss_fn(model(inputs), targets)
    with autocast(device, amp):
        return loss_fn(model(inputs), targets)


def _record_test(
    best: BestEpoch, model: nn.Module, test_set: Any, task: TaskLike, device: torch.device,
    amp: bool, epoch: int, attrs: dict[str, Any], trial: Trial | None,
) -> None:  # fmt: skip
    """Evaluate the best epoch's weights on the test split once, into ``attrs`` and ``trial``."""
    figures = best.test_figures(model, test_set, task.loss_fn, device, amp, current_epoch=epoch)
    if figures is None:
        return
    attrs.update(test_accuracy=figures[1], test_loss=figures[0])
    if trial is not None:
        trial.set_attr(TEST_ACCURACY, figures[1])
        trial.set_attr("test_loss", figures[0])


def train(
    config: Mapping[str, Any],
    task: TaskLike,
    *,
    epochs: int | None = None,
    seed: int,
    trial: Trial | None = None,
    metric: str = "val_accuracy",
    data: Any = None,
    options: TrainingOptions | None = None,
    save_path: str | os.PathLike[str] | None = None,
    **option_overrides: Any,
) -> TrainResult:
    """Train ``task``'s model with the hyperparameters in ``config``; report every epoch.

    Same ``config``, ``seed``, device and thread count give bit-identical weights and
    metrics on the CPU. The schedule runs per optimizer step: warmup (``warmup_epochs``
    converted with the steps per epoch, or ``warmup_steps``) hands over to the scheduler,
    whose length (cosine ``T_max``, onecycle ``total_steps``, linear/polynomial
    ``total_iters``) is the steps left after warmup unless the config gives it; a plateau
    scheduler gets the validation ``metric`` after each epoch instead. The effective
    ``batch_size`` is honoured exactly, split into micro-batches when ``max_micro_batch``
    (or ``fit_micro_batch`` on a GPU) caps it. With ``batch_growth`` it grows every few
    epochs (see :mod:`hptune.training._batch_growth`): the micro-batch is fitted for the
    largest batch the run reaches, the LR follows the growth's ``lr_policy``, and the
    scheduler's length counts the steps of the grown epochs.

    Args:
        config: The trial config; keys in :data:`CONFIG_KEYS`, defaults there too.
        task: A :class:`hptune.tasks.Task` (or anything with its four attributes).
        epochs: Epochs to train; ``None`` means ``task.default_epochs``.
        seed: Seeds Python, NumPy, torch and the data order (use ``trial.seed``).
        trial: When given, ``trial.report(epoch, value)`` after each epoch (1-based, so
            pruners count epochs) and ``trial.set_attr`` for every fact in ``attrs``.
        metric: ``"val_accuracy"`` or ``"val_loss"``, measured after every epoch; its
            direction (accuracy up, loss down) picks the best epoch (see
            :mod:`hptune.metrics`).
        data: Pre-built splits (``.train``, ``.val``, ``.test``); ``None`` calls
            ``task.datasets()``.
        options: How to train (:class:`~hptune.training.options.TrainingOptions`: device,
            micro-batch cap, AMP, clipping, divergence rule, ...); defaults when None.
        save_path: Also ``torch.save`` the best epoch's weights there when training ends.
        **option_overrides: Options given as keywords (``grad_clip=1.0``), applied over
            ``options``.

    Returns:
        A :class:`TrainResult`.

    Raises:
        ConfigError: A bad config key or value, or a bad option.
        TrialPruned: The trial's pruner stopped it (let it propagate).
        TrialDiverged: The loss became NaN/inf or exploded; the message gives the reason.

    Example:
        >>> from hptune.tasks import get_task
        >>> result = train({"lr": 3e-3}, get_task("digits-mlp"), epochs=2, seed=0)  # doctest: +SKIP
        >>> result.best_value > 0.8  # doctest: +SKIP
        True
    """
    cfg = parse_config(config)
    opts = _options(options, option_overrides)
    epochs = check("epochs", task.default_epochs if epochs is None else epochs, Int(low=1))
    direction = direction_of(metric)
    dev = resolve_device(opts.device)
    use_amp = opts.amp and dev.type == "cuda"
    if opts.amp and not use_amp:
        logger.warning("amp=True is ignored on %s: mixed precision here needs CUDA", dev)
    generator = seed_everything(seed, dev)
    splits = splits_on(task.datasets() if data is None else data, dev)
    # Built right after seeding, so the initial weights are a function of the seed alone.
    model = task.build_model(dict(config)).to(dev)
    loss_fn = task.loss_fn
    lr = scaled_lr(cfg.base_lr(), cfg.batch_size, opts.lr_scaling, opts.base_batch_size)
    optimizer = build_optimizer(model, cfg, lr)
    batches = _batch_schedule(cfg, opts, model, task, splits.train, dev, epochs)
    plan = plan_batch(cfg.batch_size, batches.micro)
    # Loader batches are effective batches; split_windows cuts them into the plan's
    # micro-batches, so the last, short batch of an epoch is one exact window too.
    loader = make_loader(splits.train, cfg.batch_size, shuffle=True, generator=generator)
    if cfg.batch_growth is None or cfg.warmup_steps is not None:
        n_warmup = warmup_steps(cfg, batches.steps[0])
    else:  # epochs of different lengths
        n_warmup = warmup_steps_over(cfg.warmup_epochs, batches.steps)
    after_steps = max(1, sum(batches.steps) - n_warmup)
    name, options = scheduler_options(cfg, after_steps, direction)
    # A constant LR without warmup needs no scheduler: torch's ConstantLR changes nothing,
    # yet costs a few us per step (its step(), and the wrapper it puts on optimizer.step).
    constant = name == "constant" and not options and n_warmup == 0
    scheduler = (
        None if constant else create_lr_scheduler(optimizer, name, warmup_steps=n_warmup, **options)
    )
    # A bare plateau moves only on metrics; everything else steps per optimizer step.
    per_step = scheduler is not None and steps_per_optimizer_step(scheduler)
    accumulator = GradientAccumulator(
        optimizer,
        plan.accumulation_steps,
        model=model,
        scheduler=scheduler if per_step else None,
        max_grad_norm=cfg.grad_clip if cfg.grad_clip is not None else opts.grad_clip,
        scaler=torch.amp.GradScaler("cuda") if use_amp else None,
    )
    sizer = None
    if cfg.batch_growth is not None:  # it applies the LR policy to the optimizer and schedule
        sizer = cfg.batch_growth.sizer(
            cfg.batch_size, batches.cap, optimizer=optimizer, scheduler=scheduler
        )
    attrs: dict[str, Any] = {
        "effective_batch_size": plan.effective_batch_size,
        "micro_batch_size": plan.micro_batch_size,
        "accumulation_steps": plan.accumulation_steps,
        "lr": lr,
        "warmup_steps": n_warmup,
        "device": str(dev),
        "amp": use_amp,
    }
    watch = DivergenceWatch(opts.divergence_factor)
    best = BestEpoch(1.0 if direction == "maximize" else -1.0)
    history: list[dict[str, float]] = []
    step = epoch = 0
    model.train()  # and evaluate() leaves it in training mode after each evaluation
    try:
        for epoch in range(1, epochs + 1):
            for batch in loader:
                lr_used = float(optimizer.param_groups[0]["lr"])  # the LR of this batch's step
                if accumulator.accumulation_steps == 1:  # no window to cut: ~5 us a step less
                    loss = _forward(model, loss_fn, batch, dev, use_amp)
                    accumulator.step_batch(loss, len(batch[1]))
                    watch.add(loss, len(batch[1]))
                else:  # the batch is one window of micro-batches
                    for window in accumulator.split_windows((batch,)):
                        for micro in window:
                            loss = _forward(model, loss_fn, micro, dev, use_amp)
                            window.backward(loss)
                            watch.add(loss, len(micro[1]))
                # The accumulator has stepped the optimizer and the scheduler. The watch
                # reads the losses every few steps, not every step.
                step += 1
                watch.end_step(epoch, step)
            train_loss = watch.end_epoch()
            val_loss, val_accuracy = evaluate(model, splits.val, loss_fn, dev, use_amp)
            value = val_accuracy if metric == "val_accuracy" else val_loss
            if not math.isfinite(val_loss):
                raise TrialDiverged(f"validation loss became {val_loss} at epoch {epoch}")
            if needs_metric(scheduler):
                scheduler.step(value)
            if best.offer(epoch, value, model):
                attrs.update(best_epoch=epoch, val_accuracy=val_accuracy, val_loss=val_loss)
            history.append(
                {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
                 "val_accuracy": val_accuracy, "lr": lr_used}
            )  # fmt: skip
            if sizer is not None:
                history[-1]["batch_size"] = batches.sizes[epoch - 1]
                attrs["final_batch_size"] = batches.sizes[epoch - 1]
            attrs.update(epochs_run=epoch, optimizer_steps=accumulator.optimizer_steps)
            logger.info("epoch %d: %s %.4f, train_loss %.4f, lr %.3g", epoch, metric, value,
                        train_loss, lr_used)  # fmt: skip
            if trial is not None:
                for key, fact in attrs.items():
                    trial.set_attr(key, fact)
                trial.report(epoch, value)  # raises TrialPruned when the pruner says stop
            if sizer is not None and epoch < epochs and sizer.on_epoch_end(epoch - 1):
                size = sizer.current_batch_size
                accumulator.accumulation_steps = plan_batch(size, batches.micro).accumulation_steps
                loader = make_loader(splits.train, size, shuffle=True, generator=generator)
    except (TrialPruned, TrialDiverged):
        _record_test(best, model, splits.test, task, dev, use_amp, epoch, attrs, trial)
        raise
    _record_test(best, model, splits.test, task, dev, use_amp, epoch, attrs, trial)
    best_state = best.state if opts.save_best or save_path is not None else None
    if save_path is not None:
        torch.save(best_state, os.fspath(save_path))
    return TrainResult(
        best_value=best.sign * best.value,
        final_value=history[-1]["val_accuracy" if metric == "val_accuracy" else "val_loss"],
        history=tuple(history),
        model=model,
        best_state=best_state,
        attrs=dict(attrs),
    )
