"""Batch sizes: a growth schedule with an LR policy, a memory-fitted maximum, and plans.

- :class:`DynamicBatchSizer` grows the batch during training (every N epochs or when a
  metric plateaus), optionally rescaling the learning rate with it.
- :func:`find_max_batch_size` finds the largest batch that fits in memory by probing a real
  forward, backward and optimizer step, recovering from out-of-memory errors.
- :func:`plan_batch` splits an effective batch size into micro-batches and accumulation steps
  (see :mod:`hptune.training.accumulation`).
"""

from __future__ import annotations

import gc
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from hptune._checks import Int, Number, OneOf, check, optional
from hptune.exceptions import ConfigError, HptuneError
from hptune.trial import is_oom_error

__all__ = ["BatchPlan", "DynamicBatchSizer", "find_max_batch_size", "is_oom_error", "plan_batch"]

_LR_POLICIES = ("keep", "linear", "sqrt")


@dataclass(frozen=True)
class BatchPlan:
    """How an effective batch is cut into micro-batches.

    Attributes:
        micro_batch_size: the largest micro-batch (all are this size or one less).
        accumulation_steps: micro-batches per optimizer step.
        effective_batch_size: samples per optimizer step, honoured exactly.
        micro_batch_sizes: the size of each micro-batch of a full window; sums to
            ``effective_batch_size``.
    """

    micro_batch_size: int
    accumulation_steps: int
    effective_batch_size: int
    micro_batch_sizes: tuple[int, ...]

    @property
    def uniform(self) -> bool:
        """Whether all micro-batches have the same size (``micro * steps == effective``)."""
        return self.micro_batch_size * self.accumulation_steps == self.effective_batch_size


def plan_batch(effective_batch_size: int, max_micro_batch: int | None = None) -> BatchPlan:
    """Split ``effective_batch_size`` into the fewest micro-batches of at most ``max_micro_batch``.

    ``accumulation_steps = ceil(effective / max_micro)`` and the samples are spread as evenly
    as possible: ``effective % steps`` micro-batches of ``ceil(effective / steps)`` and the rest
    one smaller. The effective batch is honoured exactly. Searching for an exact divisor instead
    could force tiny micro-batches (a prime effective size would mean micro-batches of 1); an
    uneven split costs nothing because the accumulator weights each micro-batch by its samples.

    To train with the plan, load batches of ``effective_batch_size`` and cut them with
    ``GradientAccumulator(opt, plan.accumulation_steps).split_windows(loader)``, which makes
    exactly these micro-batches. When ``plan.uniform``, a loader of ``micro_batch_size``
    batches with ``windows(loader)`` gives the same windows.

    Example:
        >>> plan_batch(100, 32)
        BatchPlan(micro_batch_size=25, accumulation_steps=4, effective_batch_size=100, micro_batch_sizes=(25, 25, 25, 25))
        >>> plan_batch(98, 30).micro_batch_sizes
        (25, 25, 24, 24)
    """
    check("effective_batch_size", effective_batch_size, Int(low=1))
    if max_micro_batch is None:
        max_micro_batch = effective_batch_size
    check("max_micro_batch", max_micro_batch, Int(low=1))
    steps = math.ceil(effective_batch_size / max_micro_batch)
    base, extra = divmod(effective_batch_size, steps)
    sizes = tuple([base + 1] * extra + [base] * (steps - extra))
    return BatchPlan(sizes[0], steps, effective_batch_size, sizes)


class DynamicBatchSizer:
    """Grow the batch size during training, with a learning-rate policy.

    The batch grows on a schedule (every few epochs, or on a plateau of the watched
    metric) up to ``max_batch_size``. On growth from ``b`` to ``b'`` the LR
    of every parameter group is multiplied by ``1`` (``"keep"``), ``b'/b`` (``"linear"``, the
    linear scaling rule of Goyal et al. 2017, arXiv 1706.02677) or ``sqrt(b'/b)`` (``"sqrt"``,
    Krizhevsky 2014, arXiv 1404.5997; Hoffer et al. 2017, arXiv 1705.08741), so the ratios
    between groups are kept. The LRs a given scheduler computes from are scaled too (a
    group's ``initial_lr``, ``max_lr`` and ``min_lr``; the scheduler's ``base_lrs`` and
    ``max_lrs``, through a ``WarmupScheduler`` to the scheduler after it), so that it does not
    undo the change at its next step. Absolute floors (``eta_min``) are not scaled.

    Args:
        initial_batch_size: the starting batch size.
        max_batch_size: the cap (e.g. from :func:`find_max_batch_size` times accumulation).
        growth_factor: multiply the batch by this on growth (> 1); it grows by at least 1.
        every_n_epochs: grow after every N-th epoch (epochs ``N-1, 2N-1, ...``, 0-based).
        patience: grow when ``metric`` has not improved for this many epochs.
        mode: ``"min"`` or ``"max"``: whether a lower or higher metric is better.
        min_delta: an improvement smaller than this does not count.
        lr_policy: ``"keep"``, ``"linear"`` or ``"sqrt"``.
        optimizer: whose LRs the policy changes; without it, only ``lr_factor`` is tracked.
        scheduler: whose ``base_lrs`` the policy scales as well.

    Example:
        >>> sizer = DynamicBatchSizer(32, 256, growth_factor=2, every_n_epochs=2)
        >>> [sizer.on_epoch_end(epoch) for epoch in range(4)], sizer.current_batch_size
        ([False, True, False, True], 128)
    """

    def __init__(
        self,
        initial_batch_size: int,
        max_batch_size: int,
        growth_factor: float = 1.5,
        *,
        every_n_epochs: int | None = None,
        patience: int | None = None,
        mode: str = "min",
        min_delta: float = 0.0,
        lr_policy: str = "keep",
        optimizer: torch.optim.Optimizer | None = None,
        scheduler: Any | None = None,
    ) -> None:
        check("initial_batch_size", initial_batch_size, Int(low=1))
        check("max_batch_size", max_batch_size, Int(low=initial_batch_size))
        check("growth_factor", growth_factor, Number(low=1, low_open=True))
        check("every_n_epochs", every_n_epochs, optional(Int(low=1)))
        check("patience", patience, optional(Int(low=1)))
        check("mode", mode, OneOf(("min", "max")))
        check("lr_policy", lr_policy, OneOf(tuple(_LR_POLICIES)))
        self.current_batch_size = initial_batch_size
        self.max_batch_size = max_batch_size
        self.growth_factor = growth_factor
        self.every_n_epochs = every_n_epochs
        self.patience = patience
        self.mode = mode
        self.min_delta = min_delta
        self.lr_policy = lr_policy
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.lr_factor = 1.0
        self.best: float | None = None
        self.n_bad_epochs = 0

    def increase_batch_size(self) -> int:
        """Grow the batch (capped at ``max_batch_size``), apply the LR policy, return the size."""
        old = self.current_batch_size
        new = min(max(int(old * self.growth_factor), old + 1), self.max_batch_size)
        if new == old:
            return old
        self.current_batch_size = new
        factor = {"keep": 1.0, "linear": new / old, "sqrt": math.sqrt(new / old)}[self.lr_policy]
        self.lr_factor *= factor
        if factor != 1.0:
            self._scale_lrs(factor)
        return new

    def on_epoch_end(self, epoch: int, metric: float | None = None) -> bool:
        """Call once after each epoch; grows the batch when the schedule says so.

        Returns:
            Whether the batch grew.
        """
        due = self.every_n_epochs is not None and (epoch + 1) % self.every_n_epochs == 0
        if self.patience is not None:
            if metric is None:
                raise HptuneError("on_epoch_end needs metric= when patience is set")
            due = self._plateaued(float(metric)) or due
        old = self.current_batch_size
        return due and self.increase_batch_size() > old

    def _plateaued(self, metric: float) -> bool:
        sign = 1.0 if self.mode == "min" else -1.0
        if self.best is None or sign * (self.best - metric) > self.min_delta:
            self.best, self.n_bad_epochs = metric, 0
            return False
        self.n_bad_epochs += 1
        if self.n_bad_epochs < self.patience:  # type: ignore[operator]
            return False
        self.n_bad_epochs = 0
        return True

    def _scale_lrs(self, factor: float) -> None:
        if self.optimizer is not None:
            for group in self.optimizer.param_groups:
                for key in _GROUP_LR_KEYS:
                    if key in group:
                        group[key] *= factor
        _scale_schedule(self.scheduler, factor)

    def state_dict(self) -> dict[str, Any]:
        """The sizer's state (batch size, LR factor, plateau tracking) for checkpoints."""
        keys = ("current_batch_size", "lr_factor", "best", "n_bad_epochs")
        return {key: getattr(self, key) for key in keys}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (the optimizer's LRs are restored by the optimizer)."""
        unknown = set(state_dict) - set(self.state_dict())
        if unknown:
            raise ConfigError(
                f"unknown DynamicBatchSizer state keys {sorted(unknown)}; "
                "pass a dict from DynamicBatchSizer.state_dict()"
            )
        for key, value in state_dict.items():
            setattr(self, key, value)


# LRs that schedulers keep in the optimizer's groups: torch's schedulers start from
# initial_lr; OneCycleLR reads max_lr and min_lr of each group at every step.
_GROUP_LR_KEYS = ("lr", "initial_lr", "max_lr", "min_lr")
# LRs that schedulers keep on themselves, one per group (CyclicLR's max_lrs).
_SCHEDULER_LR_ATTRS = ("base_lrs", "max_lrs")


def _scale_schedule(scheduler: Any, factor: float) -> None:
    """Scale the LRs a scheduler computes from, so its next step keeps the new LR.

    Follows a wrapped scheduler (``WarmupScheduler.after``) and the parts of torch's
    ``SequentialLR``/``ChainedScheduler``. Absolute floors (``eta_min``, a plateau's
    ``min_lrs``) are left alone: they are limits, not the schedule's scale.
    """
    if scheduler is None:
        return
    for attr in _SCHEDULER_LR_ATTRS:
        values = getattr(scheduler, attr, None)
        if isinstance(values, list):
            setattr(scheduler, attr, [lr * factor for lr in values])
    for inner in [getattr(scheduler, "after", None), *getattr(scheduler, "_schedulers", ())]:
        _scale_schedule(inner, factor)


def _release_memory() -> None:
    # The failed probe's tensors are only unreachable once its frames are collected; then the
    # caching allocator can hand the memory back. A CPU-only process has no cache to empty
    # (and a full collection costs ~0.1 s), so it skips both.
    if torch.cuda.is_available():
        gc.collect()
        torch.cuda.empty_cache()


def _fits(probe: Callable[[int], bool], batch_size: int) -> bool:
    try:
        ok = bool(probe(batch_size))
    except Exception as exc:
        if not is_oom_error(exc):
            raise
        ok = False
    if not ok:
        _release_memory()
    return ok


def _search(probe: Callable[[int], bool], start: int, max_batch_size: int) -> int:
    """Double from ``start`` until a probe fails, then bisect between last good and first bad."""
    if not _fits(probe, start):
        raise HptuneError(
            f"batch size start={start} does not fit in memory; lower start, use a smaller "
            "model or input, or enable mixed precision"
        )
    good, bad = start, None
    while bad is None and good < max_batch_size:
        candidate = min(good * 2, max_batch_size)
        if _fits(probe, candidate):
            good = candidate
        else:
            bad = candidate
    while bad is not None and bad - good > 1:
        mid = (good + bad) // 2
        if _fits(probe, mid):
            good = mid
        else:
            bad = mid
    return good


def _default_optimizer(params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
    # AdamW keeps two state tensors per parameter, the most of the common optimizers, so a
    # size found with it also fits SGD.
    return torch.optim.AdamW(params, lr=0.0)


def _model_probe(
    model: nn.Module,
    make_batch: Callable[[int], tuple[Any, Any]],
    loss_fn: Callable[[Any, Any], torch.Tensor],
    optimizer_factory: Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer],
    device: torch.device | None,
) -> Callable[[int], bool]:
    def probe(batch_size: int) -> bool:
        inputs, targets = make_batch(batch_size)
        if device is not None:
            inputs, targets = inputs.to(device), targets.to(device)
        # A fresh optimizer per probe: its state is allocated at the first step, as in training.
        optimizer = optimizer_factory(model.parameters())
        try:
            loss_fn(model(inputs), targets).backward()
            optimizer.step()
            if device is not None and device.type == "cuda":
                torch.cuda.synchronize(device)  # surfaces asynchronous allocation failures
        finally:
            model.zero_grad(set_to_none=True)
        return True

    return probe


def find_max_batch_size(
    model: nn.Module | None = None,
    make_batch: Callable[[int], tuple[Any, Any]] | None = None,
    loss_fn: Callable[[Any, Any], torch.Tensor] | None = None,
    optimizer_factory: Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer] | None = None,
    *,
    start: int = 1,
    max_batch_size: int = 65536,
    safety_margin: float = 0.9,
    probe: Callable[[int], bool] | None = None,
    device: torch.device | str | None = None,
) -> int:
    """Find the largest batch size whose training step fits in memory.

    Each probe runs a real forward, backward and optimizer step on ``make_batch(b)``; an
    out-of-memory error (``torch.cuda.OutOfMemoryError`` or a RuntimeError saying "out of
    memory") counts as "does not fit", after which the cache is emptied. The size doubles
    from ``start`` until a probe fails (or ``max_batch_size`` fits), then a binary search
    between the last good and the first bad size finds the limit in ``O(log b)`` probes. The
    model's weights, buffers and training mode are restored afterwards. On a CPU nothing
    raises an out-of-memory error, so the search ends at ``max_batch_size``.

    Args:
        model: the model to probe (moved to ``device`` by the caller).
        make_batch: ``make_batch(batch_size) -> (inputs, targets)``.
        loss_fn: ``loss_fn(model(inputs), targets)`` returns a scalar loss.
        optimizer_factory: ``optimizer_factory(params)``; defaults to AdamW (the most state).
        start: the first size tried; it must fit.
        max_batch_size: never probe above this.
        safety_margin: return ``max(1, floor(found * safety_margin))``, in (0, 1]; headroom
            for fragmentation and for batches larger than the probe's (longer sequences).
        probe: a custom ``probe(batch_size) -> bool`` (or raising an OOM error) replacing the
            model probe.
        device: where ``make_batch``'s tensors go.

    Example:
        >>> find_max_batch_size(probe=lambda b: b <= 300, safety_margin=1.0)
        300
    """
    check("start", start, Int(low=1))
    check("max_batch_size", max_batch_size, Int(low=start))
    check("safety_margin", safety_margin, Number(0, 1, low_open=True))
    if probe is not None:
        found = _search(probe, start, max_batch_size)
        return max(1, math.floor(found * safety_margin))
    if model is None or make_batch is None or loss_fn is None:
        raise ConfigError("find_max_batch_size needs model, make_batch and loss_fn, or probe=")
    dev = torch.device(device) if device is not None else None
    factory = optimizer_factory or _default_optimizer
    # Kept on the CPU so that the snapshot takes no accelerator memory from the probes.
    saved = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
    was_training = model.training
    model.train()
    try:
        found = _search(
            _model_probe(model, make_batch, loss_fn, factory, dev), start, max_batch_size
        )
    finally:
        model.load_state_dict(saved)
        model.train(was_training)
        _release_memory()
    return max(1, math.floor(found * safety_margin))
