"""The learning-rate range test (Smith 2017, "Cyclical Learning Rates", arXiv 1506.01186).

Train for a few steps while the LR grows exponentially from ``min_lr`` to ``max_lr``, record
the loss, and read a good LR off the curve. Afterwards the model, the optimizer and the
random number generators are exactly as they were.
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hptune.exceptions import ConfigError, HptuneError

__all__ = ["LRFinderResult", "lr_range_test", "suggest_lr"]


@dataclass(frozen=True)
class LRFinderResult:
    """The curve of a range test and what it suggests.

    Attributes:
        lrs: the reference LR at each step (that of the group with the largest initial LR).
        losses: the raw training loss at each step.
        smoothed_losses: ``losses`` smoothed by a bias-corrected exponential moving average run
            forwards then backwards (zero lag, see :func:`lr_range_test`).
        suggested_lr: the LR of steepest descent of the smoothed loss (see :func:`suggest_lr`);
            ``None`` when the curve has too few points or never falls.
        suggested_range: ``(low, high)`` bounds for a cyclical or one-cycle schedule, or ``None``.
        stop_reason: ``"completed"``, ``"diverged"`` or ``"non-finite loss"``.
    """

    lrs: tuple[float, ...]
    losses: tuple[float, ...]
    smoothed_losses: tuple[float, ...]
    suggested_lr: float | None
    suggested_range: tuple[float, float] | None
    stop_reason: str

    def plot(self, path: str | Path) -> None:
        """Save the loss-vs-LR curve (log x axis) to ``path``; needs matplotlib."""
        # The object-oriented API with the Agg canvas touches no global backend state.
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(6, 4))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        ax.semilogx(self.lrs, self.losses, alpha=0.3, label="loss")
        ax.semilogx(self.lrs, self.smoothed_losses, label="smoothed loss")
        if self.suggested_range is not None:
            ax.axvspan(*self.suggested_range, alpha=0.1, color="green", label="suggested range")
        if self.suggested_lr is not None:
            ax.axvline(self.suggested_lr, color="red", ls="--", label=f"{self.suggested_lr:.2e}")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("training loss")
        ax.legend()
        fig.savefig(path)


def suggest_lr(
    lrs: Iterable[float], smoothed_losses: Iterable[float], *, skip_start: int, skip_end: int
) -> tuple[float | None, tuple[float, float] | None]:
    """Read an LR and an LR range off a range-test curve.

    - The suggested LR is where the smoothed loss falls fastest per decade of LR: the minimum
      of ``d loss / d log10(lr)`` (``numpy.gradient``), ignoring the first ``skip_start``
      points (noise before anything is learnt) and the last ``skip_end`` (the approach to
      divergence). ``None`` if fewer than 3 points remain or the loss never falls there.
    - The range follows Smith's reading of the curve (arXiv 1506.01186, section 3.3): from
      where the loss starts to fall — the first LR at which the smoothed loss has covered 10%
      of its total fall — to where it stops falling — the LR of the minimum smoothed loss;
      both after the first ``skip_start`` points. ``None`` if the loss never falls.
    """
    lr_arr = np.asarray(list(lrs), dtype=float)
    loss_arr = np.asarray(list(smoothed_losses), dtype=float)
    lo, hi = skip_start, len(lr_arr) - skip_end
    suggested = None
    if hi - lo >= 3:
        slope = np.gradient(loss_arr[lo:hi], np.log10(lr_arr[lo:hi]))
        if slope.min() < 0:
            suggested = float(lr_arr[lo + int(np.argmin(slope))])
    tail = loss_arr[lo:]
    if len(tail) == 0:
        return suggested, None
    i_min = int(np.argmin(tail))
    fall = tail[0] - tail[i_min]
    if not fall > 0:
        return suggested, None
    i_low = int(np.argmax(tail <= tail[0] - 0.1 * fall))
    lr_arr = lr_arr[lo:]
    return suggested, (float(lr_arr[i_low]), float(lr_arr[i_min]))


class _Snapshot:
    """Everything the sweep changes: weights, grads, mode, optimizer state, RNG states."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        # On the CPU: a second copy of the weights on the accelerator could itself run out
        # of memory. Copying between devices is exact.
        self.model_state = {
            k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()
        }
        self.grads = [None if p.grad is None else p.grad.clone() for p in model.parameters()]
        self.training = model.training
        self.optimizer_state = copy.deepcopy(optimizer.state_dict())
        self.torch_rng = torch.get_rng_state()
        # Querying CUDA RNG would initialise CUDA in a process that never used it.
        self.cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
        self.numpy_rng = np.random.get_state()
        self.python_rng = random.getstate()

    def restore(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        model.load_state_dict(self.model_state)
        for param, grad in zip(model.parameters(), self.grads):
            param.grad = grad
        model.train(self.training)
        optimizer.load_state_dict(self.optimizer_state)
        torch.set_rng_state(self.torch_rng)
        if self.cuda_rng is not None:
            torch.cuda.set_rng_state_all(self.cuda_rng)
        np.random.set_state(self.numpy_rng)
        random.setstate(self.python_rng)


def _ema(values: list[float], smoothing: float) -> list[float]:
    """Bias-corrected exponential moving average (the first value is not pulled to 0)."""
    beta, average, out = 1.0 - smoothing, 0.0, []
    for i, value in enumerate(values):
        average = beta * average + (1.0 - beta) * value
        out.append(average / (1.0 - beta ** (i + 1)))
    return out


def _zero_lag(values: list[float], smoothing: float) -> list[float]:
    """The EMA run forwards then backwards: as smooth, but with no lag (no shift to the right)."""
    return _ema(_ema(values, smoothing)[::-1], smoothing)[::-1]


def _cycle(loader: Iterable[Any]) -> Iterator[Any]:
    """Yield the loader's batches, starting over (a new epoch) whenever it runs out."""
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
            raise HptuneError("train_loader yielded no batches; the range test needs data")


def _check(
    min_lr: float, max_lr: float, n_steps: int, smoothing: float, diverge_threshold: float
) -> None:
    if not 0 < min_lr < max_lr:
        raise ConfigError(f"0 < min_lr < max_lr must hold, got {min_lr=}, {max_lr=}")
    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 2:
        raise ConfigError(f"n_steps must be an int >= 2, got {n_steps!r}")
    if not 0 < smoothing <= 1:
        raise ConfigError(f"smoothing must be in (0, 1] (1 = no smoothing), got {smoothing!r}")
    if not diverge_threshold > 1:
        raise ConfigError(f"diverge_threshold must be > 1, got {diverge_threshold!r}")


def lr_range_test(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    train_loader: Iterable[Any],
    loss_fn: Callable[[Any, Any], torch.Tensor],
    *,
    min_lr: float = 1e-7,
    max_lr: float = 10.0,
    n_steps: int = 100,
    smoothing: float = 0.05,
    diverge_threshold: float = 4.0,
    device: torch.device | str | None = None,
) -> LRFinderResult:
    """Run an LR range test (Smith 2017, arXiv 1506.01186) and restore everything after.

    Step ``i`` (of ``n_steps``) trains one batch at ``min_lr * (max_lr / min_lr) ** (i / (n_steps
    - 1))``. The parameter group with the largest initial LR follows this sweep and the other
    groups keep their ratio to it (setting every group to one LR, as some finders do, would
    test a different model). The loss is smoothed by an exponential moving average with
    weight ``smoothing`` on the newest loss, bias-corrected like Adam's moments. The sweep
    stops early when this running average exceeds ``diverge_threshold`` times its minimum or
    a loss is NaN/inf; the loader is cycled if it runs out. Losses are assumed positive.

    A running average lags by about ``1 / smoothing`` steps, which on an exponential sweep
    moves every feature of the curve to a larger LR (by ``gamma ** 20``, 16x, for 100 steps
    over 6 decades at 0.05), so an LR read off it is too high. The curve returned, and read
    by :func:`suggest_lr`, is the same average run forwards then backwards: no lag.

    Afterwards the model's weights, buffers, gradients and mode, the optimizer's state and LRs,
    and the torch (CPU, and CUDA if initialised), numpy and Python RNG states are restored
    bit-exactly. ``suggested_lr`` skips the first ``n_steps // 10`` and last ``n_steps // 20``
    points (at least 1 each); see :func:`suggest_lr`.

    Args:
        model: the model to train; moved to ``device`` by the caller.
        optimizer: an optimizer over the model's parameters.
        train_loader: yields ``(inputs, targets)``.
        loss_fn: ``loss_fn(model(inputs), targets)`` returns a scalar loss.
        min_lr: the first reference LR.
        max_lr: the last reference LR.
        n_steps: the number of steps (batches) of the sweep.
        smoothing: the EMA weight of the newest loss (0.05 is an EMA with beta 0.95).
        diverge_threshold: stop when the running average exceeds this times its minimum.
        device: where to move inputs and targets.

    Example:
        >>> model = nn.Linear(4, 1)
        >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
        >>> data = [(torch.randn(16, 4), torch.randn(16, 1))]
        >>> result = lr_range_test(model, opt, data, nn.MSELoss(), n_steps=20)
        >>> len(result.lrs) <= 20
        True
    """
    _check(min_lr, max_lr, n_steps, smoothing, diverge_threshold)
    snapshot = _Snapshot(model, optimizer)
    try:
        lrs, losses, reason = _sweep(
            model,
            optimizer,
            _cycle(train_loader),
            loss_fn,
            min_lr,
            max_lr,
            n_steps,
            smoothing,
            diverge_threshold,
            device,
        )
    finally:
        snapshot.restore(model, optimizer)
    smoothed = _zero_lag(losses, smoothing)
    skip_start, skip_end = max(1, n_steps // 10), max(1, n_steps // 20)
    suggested, span = suggest_lr(lrs, smoothed, skip_start=skip_start, skip_end=skip_end)
    return LRFinderResult(tuple(lrs), tuple(losses), tuple(smoothed), suggested, span, reason)


def _sweep(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Iterator[Any],
    loss_fn: Callable[[Any, Any], torch.Tensor],
    min_lr: float,
    max_lr: float,
    n_steps: int,
    smoothing: float,
    diverge_threshold: float,
    device: torch.device | str | None,
) -> tuple[list[float], list[float], str]:
    groups = optimizer.param_groups
    reference = max(group["lr"] for group in groups)
    ratios = [group["lr"] / reference if reference > 0 else 1.0 for group in groups]
    gamma = (max_lr / min_lr) ** (1.0 / (n_steps - 1))
    beta = 1.0 - smoothing
    lrs: list[float] = []
    losses: list[float] = []
    average, best = 0.0, math.inf
    model.train()
    for i in range(n_steps):
        lr = min_lr * gamma**i
        for group, ratio in zip(groups, ratios):
            group["lr"] = lr * ratio
        inputs, targets = next(batches)
        if device is not None:
            inputs, targets = inputs.to(device), targets.to(device)
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(inputs), targets)
        value = loss.item()
        if not math.isfinite(value):
            return lrs, losses, "non-finite loss"
        loss.backward()
        optimizer.step()
        lrs.append(lr)
        losses.append(value)
        # The running (causal) average decides divergence: only the past is known here.
        average = beta * average + (1.0 - beta) * value
        current = average / (1.0 - beta ** (i + 1))
        best = min(best, current)
        if current > diverge_threshold * best:
            return lrs, losses, "diverged"
    return lrs, losses, "completed"
