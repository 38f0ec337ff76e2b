"""Gradient accumulation that equals one large batch exactly.

Each micro-batch's loss is a mean over its own samples. Giving it the weight
``n_micro / n_window`` (its share of the window's samples) makes the accumulated gradient
the gradient of the mean loss over the whole window — the gradient one batch of the same
samples gives. Dividing by the number of micro-batches instead (``loss /
accumulation_steps``, a common shortcut) is only right when every micro-batch has the same
size, and dropping the short last window of an epoch loses its samples.

To know ``n_window`` before the first ``backward`` of a window, the accumulator reads the
window from the loader first: :meth:`GradientAccumulator.windows` groups
``accumulation_steps`` loader batches (micro-batches), :meth:`GradientAccumulator.split_windows`
cuts each loader batch (an effective batch) into ``accumulation_steps`` near-equal
micro-batches. Both yield :class:`Window` objects; the optimizer steps once when a window's
loop ends.

BatchNorm caveat: BatchNorm normalises with the statistics of the *micro*-batch, so for a
model with BatchNorm layers accumulation is not the same as the large batch (the gradient is
exact for the computation that ran, but that computation differs). Use GroupNorm or
LayerNorm when the equality matters, or accept the difference (micro-batches of 16 or more
usually behave close enough).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import torch
from torch import nn

from hptune._checks import Int, Number, check, optional
from hptune.exceptions import ConfigError, HptuneError
from hptune.training._warmup import steps_per_optimizer_step

__all__ = ["GradientAccumulator", "Window", "batch_len", "train_with_gradient_accumulation"]


def batch_len(batch: Any) -> int:
    """Return the number of samples in ``batch``: the size of dim 0 of its first tensor.

    A batch may be a tensor, a tuple/list of tensors (``(inputs, targets)``) or a dict.

    Example:
        >>> batch_len((torch.zeros(5, 3), torch.zeros(5)))
        5
    """
    if isinstance(batch, torch.Tensor):
        if batch.dim() == 0:
            raise HptuneError("cannot count samples in a 0-d tensor batch; pass n_samples_fn=")
        return int(batch.shape[0])
    if isinstance(batch, dict):
        items: Sequence[Any] = list(batch.values())
    elif isinstance(batch, (tuple, list)):
        items = batch
    else:
        items = []
    for item in items:
        try:
            return batch_len(item)
        except HptuneError:
            continue
    raise HptuneError(
        f"cannot count the samples of a batch of type {type(batch).__name__}: expected a tensor, "
        "or a tuple/list/dict holding one; pass n_samples_fn= to GradientAccumulator"
    )


def _split_batch(batch: Any, n_chunks: int) -> list[Any]:
    """Cut every tensor of ``batch`` along dim 0 into ``n_chunks`` near-equal parts."""
    if isinstance(batch, torch.Tensor):
        return list(torch.tensor_split(batch, n_chunks))
    if isinstance(batch, dict):
        parts = {key: _split_batch(value, n_chunks) for key, value in batch.items()}
        return [{key: parts[key][i] for key in batch} for i in range(n_chunks)]
    if isinstance(batch, (tuple, list)):
        columns = [_split_batch(item, n_chunks) for item in batch]
        return [type(batch)(column[i] for column in columns) for i in range(n_chunks)]
    # Non-tensor leaves (strings, ids) go to every chunk unchanged.
    return [batch] * n_chunks


class Window:
    """One accumulation window: the micro-batches whose gradients make one optimizer step.

    Created by :meth:`GradientAccumulator.windows` / :meth:`~GradientAccumulator.split_windows`;
    iterate it to get the micro-batches and call :meth:`backward` once per micro-batch. When
    the loop over the window ends, the accumulator steps the optimizer (and the scheduler).
    Breaking out of the loop early skips the step; the gradients already accumulated stay
    in ``.grad`` until the next window zeroes them (call ``optimizer.zero_grad()`` if
    anything reads them in between).

    Under DDP (a model with ``no_sync()``), every micro-batch but the last runs inside
    ``model.no_sync()``, so gradients are all-reduced once per window; the forward pass must
    therefore run inside the loop body, as it naturally does. DDP averages the ranks'
    gradients, which equals one big batch only when every rank's window holds as many
    samples; so under a real ``DistributedDataParallel`` the window's sample count is
    summed over the ranks (one small all-reduce per window) and each micro-batch weighted
    by its share of that global window, times the world size, which DDP's mean divides
    out. The last, short window of an epoch is then exact even when the ranks' shards
    differ in size.
    """

    def __init__(
        self,
        accumulator: GradientAccumulator,
        micro_batches: Sequence[Any],
        sizes: Sequence[int] | None = None,
    ) -> None:
        self._acc = accumulator
        self.micro_batches = list(micro_batches)
        if sizes is None:
            sizes = [accumulator.n_samples_fn(batch) for batch in self.micro_batches]
        self.sizes = list(sizes)
        self.n_samples = sum(self.sizes)
        #: What a micro-batch's size is divided by to weight its loss (see the class doc).
        self._denominator = _ddp_denominator(accumulator.model, self.n_samples)
        self._index = -1
        self._done: list[bool] = [False] * len(self.micro_batches)

    def __len__(self) -> int:
        return len(self.micro_batches)

    def __iter__(self) -> Iterator[Any]:
        acc = self._acc
        # Gradients left over (an abandoned window, a backward outside any window) are
        # dropped. After a completed window the accumulator has cleared them already, and
        # looking costs a tenth of a zero_grad call (0.5 vs 8 us on a small model).
        if acc._holds_gradients():
            acc.optimizer.zero_grad(set_to_none=True)
        last = len(self.micro_batches) - 1
        # Looked up on the class: on the instance, a Module without it raises (and catches)
        # an AttributeError, a few us per window.
        syncs = last > 0 and getattr(type(acc.model), "no_sync", None) is not None
        for i, batch in enumerate(self.micro_batches):
            self._index = i
            if syncs and i < last:
                # The gradient all-reduce must happen exactly once, on the window's last
                # backward.
                with acc.model.no_sync():  # type: ignore[union-attr]
                    yield batch
            else:
                yield batch
        if not all(self._done):
            missing = [i for i, done in enumerate(self._done) if not done]
            raise HptuneError(
                f"Window.backward was not called for micro-batch(es) {missing} of this window; "
                "call window.backward(loss) once per micro-batch"
            )
        acc._step()

    def backward(self, loss: torch.Tensor, *, reduction: str = "mean") -> None:
        """Backpropagate the current micro-batch's loss with its share of the window.

        Args:
            loss: the micro-batch's scalar loss.
            reduction: ``"mean"`` (the loss averages over the micro-batch's samples, the
                default of torch losses) or ``"sum"`` (it sums over them).
        """
        i = self._index
        if i < 0:
            raise HptuneError("Window.backward called outside the loop over the window")
        if self._done[i]:
            raise HptuneError(
                f"Window.backward called twice for micro-batch {i}; sum the losses and call it once"
            )
        if reduction == "mean":
            weight = self.sizes[i] / self._denominator
        elif reduction == "sum":
            weight = 1.0 / self._denominator
        else:
            raise ConfigError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
        # A window of one mean-reduced micro-batch has weight 1.0: skip the multiply (an
        # extra autograd node per step; the result is bit-identical either way).
        scaled = loss if weight == 1.0 else loss * weight
        if self._acc.scaler is not None:
            scaled = self._acc.scaler.scale(scaled)
        scaled.backward()
        self._done[i] = True
        self._acc.samples_seen += self.sizes[i]


def _ddp_denominator(model: Any, n_samples: int) -> float:
    """``n_samples`` alone, or under a real DDP model the window's samples summed over the
    ranks divided by the world size (DDP's gradient mean then gives the global mean)."""
    if not isinstance(model, torch.nn.parallel.DistributedDataParallel):
        return float(n_samples)
    import torch.distributed as dist

    device = next(model.parameters()).device
    total = torch.tensor([float(n_samples)], dtype=torch.float64, device=device)
    dist.all_reduce(total, group=model.process_group)  # a sync point, once per window
    return float(total.item()) / dist.get_world_size(model.process_group)


class GradientAccumulator:
    """Accumulate micro-batch gradients into exactly the gradient of one large batch.

    Args:
        optimizer: the optimizer to step once per window.
        accumulation_steps: micro-batches per window (>= 1).
        model: the model; needed for ``no_sync`` under DDP and used for gradient clipping
            (otherwise the optimizer's parameters are clipped).
        scheduler: stepped once after every optimizer step that was not skipped (torch
            schedulers and hptune's ``WarmupScheduler``; a bare ``ReduceLROnPlateau``, which
            wants a metric at evaluation time, is refused).
        max_grad_norm: clip the total gradient norm to this value, after unscaling.
        scaler: a ``torch.amp.GradScaler`` for mixed precision. A step the scaler skips
            (inf/NaN gradients) does not advance the scheduler. A skip is detected by the
            scale going down in ``scaler.update()``, which the scaler does exactly when it
            found inf/NaN gradients (its ``backoff_factor`` is < 1).
        n_samples_fn: counts the samples of a micro-batch; defaults to :func:`batch_len`.

    Attributes:
        optimizer_steps: optimizer steps taken (skipped ones not counted).
        skipped_steps: windows whose step the scaler skipped.
        samples_seen: samples backpropagated.
        last_grad_norm: total gradient norm before clipping at the last step (when clipping);
            read from the device only when asked for, so a step has no CPU-GPU sync for it.

    Example:
        >>> model = nn.Linear(3, 1)
        >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
        >>> acc = GradientAccumulator(opt, 2, model=model)
        >>> loader = [(torch.randn(4, 3), torch.randn(4, 1)) for _ in range(3)]
        >>> for window in acc.windows(loader):
        ...     for x, y in window:
        ...         window.backward(nn.functional.mse_loss(model(x), y))
        >>> acc.optimizer_steps, acc.samples_seen
        (2, 12)
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        accumulation_steps: int,
        *,
        model: nn.Module | None = None,
        scheduler: Any | None = None,
        max_grad_norm: float | None = None,
        scaler: torch.amp.GradScaler | None = None,
        n_samples_fn: Callable[[Any], int] = batch_len,
    ) -> None:
        check("accumulation_steps", accumulation_steps, Int(low=1))
        check(
            "max_grad_norm",
            max_grad_norm,
            optional(Number(low=0, low_open=True)),
            fix="None for no clipping",
        )
        if scheduler is not None and not steps_per_optimizer_step(scheduler):
            raise ConfigError(
                f"{type(scheduler).__name__} moves on a metric at evaluation time, not per "
                "optimizer step, so the accumulator cannot step it. Leave scheduler= out and "
                "call scheduler.step(metric=val_loss) after each evaluation, or wrap it in "
                "WarmupScheduler, which takes both kinds of call."
            )
        self.optimizer = optimizer
        self.accumulation_steps = accumulation_steps
        self.model = model
        self.scheduler = scheduler
        self.max_grad_norm = max_grad_norm
        self.scaler = scaler
        self.n_samples_fn = n_samples_fn
        self.optimizer_steps = 0
        self.skipped_steps = 0
        self.samples_seen = 0
        self._last_grad_norm: torch.Tensor | None = None
        self._scale: float | None = None  # the scaler's scale after the last update()

    @property
    def last_grad_norm(self) -> float | None:
        """The total gradient norm before clipping at the last step (None without clipping)."""
        norm = self._last_grad_norm
        return None if norm is None else float(norm)  # a CPU-GPU sync point, when asked

    def windows(self, loader: Iterable[Any]) -> Iterator[Window]:
        """Group every ``accumulation_steps`` loader batches into a window.

        The last window of the epoch holds the batches that remain (it is not dropped, and
        its gradient is normalised by its own sample count).
        """
        buffer: list[Any] = []
        for batch in loader:
            buffer.append(batch)
            if len(buffer) == self.accumulation_steps:
                yield Window(self, buffer)
                buffer = []
        if buffer:
            yield Window(self, buffer)

    def split_windows(self, loader: Iterable[Any]) -> Iterator[Window]:
        """Cut each loader batch into ``accumulation_steps`` near-equal micro-batches.

        Use this with a loader whose ``batch_size`` is the *effective* batch size: every
        window is then exactly one loader batch, whatever its size (see ``plan_batch``).
        """
        count = self.n_samples_fn
        for batch in loader:
            if self.accumulation_steps == 1:  # nothing to cut (tensor_split costs per batch)
                n_samples = count(batch)
                if n_samples > 0:
                    yield Window(self, [batch], [n_samples])
                continue
            parts = _split_batch(batch, self.accumulation_steps)
            sizes = [count(part) for part in parts]
            kept = [i for i, size in enumerate(sizes) if size > 0]
            if kept:
                yield Window(self, [parts[i] for i in kept], [sizes[i] for i in kept])

    def step_batch(self, loss: torch.Tensor, n_samples: int) -> None:
        """One optimizer step on one micro-batch's mean ``loss``: what a window of that one
        micro-batch does (gradients left over dropped, backward, then the step), without
        making the window. For loops whose effective batch fits one micro-batch
        (``accumulation_steps == 1``), where the window's bookkeeping is all overhead.

        Args:
            loss: The batch's scalar loss, a mean over its ``n_samples`` samples.
            n_samples: Samples in the batch (counted in ``samples_seen``).

        Example:
            >>> model = nn.Linear(3, 1)
            >>> acc = GradientAccumulator(torch.optim.SGD(model.parameters(), lr=0.1), 1)
            >>> x, y = torch.randn(4, 3), torch.randn(4, 1)
            >>> acc.step_batch(nn.functional.mse_loss(model(x), y), 4)
            >>> acc.optimizer_steps, acc.samples_seen
            (1, 4)
        """
        if self._holds_gradients():
            self.optimizer.zero_grad(set_to_none=True)
        (loss if self.scaler is None else self.scaler.scale(loss)).backward()
        self.samples_seen += n_samples
        self._step()

    def _holds_gradients(self) -> bool:
        """Whether any parameter of the optimizer has a gradient."""
        for group in self.optimizer.param_groups:
            for param in group["params"]:
                if param.grad is not None:
                    return True
        return False

    def _parameters(self) -> list[torch.Tensor]:
        if self.model is not None:
            return [p for p in self.model.parameters() if p.grad is not None]
        groups = self.optimizer.param_groups
        return [p for group in groups for p in group["params"] if p.grad is not None]

    def _step(self) -> None:
        """Unscale, clip, step (or skip), update the scaler, then step the scheduler."""
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        if self.max_grad_norm is not None:
            norm = nn.utils.clip_grad_norm_(self._parameters(), self.max_grad_norm)
            self._last_grad_norm = norm.detach()
        if self.scaler is not None:
            # The scale only changes in update(), so the one read after it is the next
            # step's "before". That read is a CPU-GPU sync point, once per step with a
            # scaler: the price of not advancing the scheduler on a skipped step.
            if self._scale is None:
                self._scale = self.scaler.get_scale()
            scale_before = self._scale
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self._scale = self.scaler.get_scale()
            skipped = self._scale < scale_before
        else:
            self.optimizer.step()
            skipped = False
        self.optimizer.zero_grad(set_to_none=True)
        if skipped:
            self.skipped_steps += 1
            return
        self.optimizer_steps += 1
        if self.scheduler is not None:
            self.scheduler.step()


def train_with_gradient_accumulation(
    model: nn.Module,
    train_loader: Iterable[Any],
    criterion: Callable[[Any, Any], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    device: torch.device | str | None,
    accumulation_steps: int,
) -> float:
    """Train one epoch with gradient accumulation, each optimizer step exactly one batch of
    the window's samples.

    Every ``accumulation_steps`` loader batches make one optimizer step whose gradient is
    exactly that of one batch of the same samples; the short last window is kept.
    ``criterion`` should average over the batch (torch's default ``reduction="mean"``);
    ``reduction="sum"`` is detected from ``criterion.reduction`` and handled.

    Returns:
        The mean training loss per sample.

    Example:
        >>> model = nn.Linear(3, 1)
        >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
        >>> data = [(torch.randn(4, 3), torch.randn(4, 1)) for _ in range(3)]
        >>> loss = train_with_gradient_accumulation(model, data, nn.MSELoss(), opt, "cpu", 2)
    """
    reduction = getattr(criterion, "reduction", "mean")
    if reduction not in ("mean", "sum"):
        raise ConfigError(
            f"criterion.reduction must be 'mean' or 'sum', got {reduction!r}; reduce the "
            "loss inside criterion instead"
        )
    accumulator = GradientAccumulator(optimizer, accumulation_steps, model=model)
    model.train()
    total, count = 0.0, 0
    for window in accumulator.windows(train_loader):
        for inputs, targets in window:
            if device is not None:
                inputs, targets = inputs.to(device), targets.to(device)
            loss = criterion(model(inputs), targets)
            window.backward(loss, reduction=reduction)
            n = batch_len(inputs)
            total += loss.item() * (n if reduction == "mean" else 1)
            count += n
    return total / count if count else float("nan")
