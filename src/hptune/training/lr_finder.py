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

from hptune._checks import Int, Number, check
from hptune.exceptions import ConfigError, HptuneError

__all__ = ["LRFinderResult", "lr_range_test", "suggest_lr"]

# The suggested range is where the loss covers the middle 80% of its fall: it starts when
# less than 10% of the fall is done and ends when less than 10% is left (see suggest_lr).
_FALL_FRACTION = 0.1


@dataclass(frozen=True)
class LRFinderResult:
    """The curve of a range test and what it suggests.

    Attributes:
        lrs: the reference LR at each step (that of the group with the largest initial LR).
        losses: the raw training loss at each step.
        smoothed_losses: ``losses`` smoothed by a causal, bias-corrected exponential moving
            average: each value depends on that step and earlier ones only (see
            :func:`lr_range_test`).
        suggested_lr: the LR at which the smoothed loss has done half its fall (see
            :func:`suggest_lr`), or ``None``.
        suggested_range: ``(low, high)`` bounds for an LR search or a cyclical / one-cycle
            schedule, ``low < suggested_lr <= high``; ``None`` exactly when
            ``suggested_lr`` is.
        stop_reason: ``"completed"``, ``"diverged"`` or ``"non-finite loss"``.
        no_suggestion_reason: why there is no suggestion, in words fit to print (the smoothed
            loss never fell, or the curve is too short); ``None`` when there is one.
    """

    lrs: tuple[float, ...]
    losses: tuple[float, ...]
    smoothed_losses: tuple[float, ...]
    suggested_lr: float | None
    suggested_range: tuple[float, float] | None
    stop_reason: str
    no_suggestion_reason: str | None = None

    def plot(self, path: str | Path) -> None:
        """Save :meth:`figure` to ``path`` (PNG, PDF, SVG... by its suffix); needs matplotlib."""
        self.figure().savefig(path, bbox_inches="tight")

    def figure(self) -> Any:
        """The loss-vs-LR curve (log x axis) as a ``matplotlib.figure.Figure``, laid out so
        every label fits inside it; needs matplotlib."""
        # The object-oriented API with the Agg canvas touches no global backend state.
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(6, 4), layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        ax.semilogx(self.lrs, self.losses, alpha=0.3, label="loss")
        ax.semilogx(self.lrs, self.smoothed_losses, label="smoothed loss")
        if self.suggested_range is not None:
            ax.axvspan(*self.suggested_range, alpha=0.1, color="green", label="suggested range")
        if self.suggested_lr is not None:
            label = f"suggested LR {self.suggested_lr:.2e}"
            ax.axvline(self.suggested_lr, color="red", ls="--", label=label)
        if self.losses:
            # Clip divergence spikes (tens of times the loss) that would flatten the rest.
            low, high = min(self.losses), min(max(self.losses), 1.5 * max(self.smoothed_losses))
            if high > low:
                ax.set_ylim(low - 0.05 * (high - low), high + 0.05 * (high - low))
        ax.set_xlabel("learning rate")
        ax.set_ylabel("training loss")
        ax.set_title(f"LR range test ({self.stop_reason})")
        ax.legend(loc="best")
        return fig


def suggest_lr(
    lrs: Iterable[float], smoothed_losses: Iterable[float], *, skip_start: int
) -> tuple[float | None, tuple[float, float] | None, str | None]:
    """Read an LR range, and an LR inside it, off a range-test curve.

    The points before ``skip_start`` are ignored (an average of the first few batches is
    noise). Of the rest, the *bottom* is the minimum of the smoothed loss and the *top* the
    maximum before it; ``fall = top - bottom``. Three levels of the fall are read off:

    - ``low``: the LR of the last point before the bottom at which the loss is still within
      10% of the fall from the top, where it starts falling for good;
    - the suggested LR: the first point after ``low`` at which half the fall is done;
    - ``high``: the first point after ``low`` within 10% of the fall from the bottom,
      somewhat before the minimum, where the fall levels off.

    So ``low < suggested <= high``. The range is Smith's reading of the curve (arXiv
    1506.01186, section 3.3: from where the loss starts to fall to where its fall slows or
    turns ragged), made exact by the 10% margins, which keep noise on the flat start and at
    the bottom from moving the bounds. The suggestion is the middle of the fall; for an
    S-shaped fall it is the point of steepest descent (fastai's ``steep``), but unlike
    the steepest slope of a noisy curve it is not drawn to a wiggle on the flat start. No
    point after the bottom is read, so the rise into divergence plays no part.

    Args:
        lrs: increasing LRs, one per point.
        smoothed_losses: the smoothed loss at each LR (finite).
        skip_start: how many leading points to ignore.

    Returns:
        ``(lr, (low, high), None)``, or ``(None, None, reason)`` when fewer than 3 points
        remain after ``skip_start`` or the smoothed loss never falls there.

    Example:
        >>> suggest_lr([1e-3, 1e-2, 1e-1, 1.0, 10.0], [2.0, 1.9, 1.0, 0.5, 4.0], skip_start=0)
        (0.1, (0.01, 1.0), None)
    """
    lr_arr = np.asarray(list(lrs), dtype=float)
    loss_arr = np.asarray(list(smoothed_losses), dtype=float)
    if lr_arr.shape != loss_arr.shape or not np.isfinite(loss_arr).all():
        raise ConfigError(
            f"lrs and smoothed_losses must be finite and of one length, got {len(lr_arr)} LRs"
            f" and {len(loss_arr)} losses, {int((~np.isfinite(loss_arr)).sum())} not finite"
        )
    lr_arr, loss_arr = lr_arr[skip_start:], loss_arr[skip_start:]
    if len(loss_arr) < 3:
        reason = (
            f"the curve has {len(loss_arr)} points after the first {skip_start}; 3 are needed:"
            " raise n_steps, or lower min_lr if the sweep diverged at once"
        )
        return None, None, reason
    bottom = int(np.argmin(loss_arr))
    top = int(np.argmax(loss_arr[: bottom + 1]))
    fall = loss_arr[top] - loss_arr[bottom]
    if not fall > 0:
        reason = (
            f"the smoothed loss never fell between lr {lr_arr[0]:.3g} and {lr_arr[-1]:.3g}:"
            " lower min_lr, raise max_lr or n_steps, or check that the model can learn"
        )
        return None, None, reason
    still_high = loss_arr[top : bottom + 1] >= loss_arr[top] - _FALL_FRACTION * fall
    low = top + int(np.flatnonzero(still_high)[-1])
    # low < bottom, and the bottom meets both conditions below: both indices exist.
    falling = loss_arr[low + 1 : bottom + 1]
    half = low + 1 + int(np.argmax(falling <= loss_arr[top] - 0.5 * fall))
    high = low + 1 + int(np.argmax(falling <= loss_arr[bottom] + _FALL_FRACTION * fall))
    return float(lr_arr[half]), (float(lr_arr[low]), float(lr_arr[high])), None


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
    check("min_lr", min_lr, Number(low=0, low_open=True))
    check("max_lr", max_lr, Number(low=min_lr, low_open=True), fix="more than min_lr")
    check("n_steps", n_steps, Int(low=2))
    check("smoothing", smoothing, Number(0, 1, low_open=True), fix="1 for no smoothing")
    check("diverge_threshold", diverge_threshold, Number(low=1, low_open=True))


def lr_range_test(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    train_loader: Iterable[Any],
    loss_fn: Callable[[Any, Any], torch.Tensor],
    *,
    min_lr: float = 1e-7,
    max_lr: float = 10.0,
    n_steps: int = 100,
    smoothing: float = 0.1,
    diverge_threshold: float = 2.0,
    device: torch.device | str | None = None,
) -> LRFinderResult:
    """Run an LR range test (Smith 2017, arXiv 1506.01186) and restore everything after.

    Step ``i`` (of ``n_steps``) trains one batch at ``min_lr * (max_lr / min_lr) ** (i / (n_steps
    - 1))``. The parameter group with the largest initial LR follows this sweep and the other
    groups keep their ratio to it (setting every group to one LR, as some finders do, would
    test a different model). The loader is cycled if it runs out. Losses are assumed positive.

    The loss is smoothed by an exponential moving average with weight ``smoothing`` on the
    newest loss, bias-corrected like Adam's moments, as fastai's ``LRFinder`` and Gugger's
    reference implementation do. It is causal: the smoothed loss at a step depends on that
    step and earlier ones only, so a divergence spike cannot leak back and hide the fall
    before it (it did when the average was also run backwards). The price is a lag of about
    ``(1 - smoothing) / smoothing`` steps (9 at 0.1): the smoothed curve's features sit at
    LRs larger by about ``gamma ** 9`` (5x for 100 steps over 8 decades, 2x for 250); more
    steps over the same span shrink it.

    The sweep stops early, ``"diverged"``, when the smoothed loss exceeds ``diverge_threshold``
    times its minimum so far, both taken from step ``max(1, n_steps // 10)`` on (before it the
    average is over a handful of batches), and ``"non-finite loss"`` when a loss is NaN or
    infinite (that loss is not recorded). The default 2 stops once the loss has doubled from
    its best, past anything :func:`suggest_lr` reads (it reads up to the minimum only).
    4 (fastai's, with weight 0.02) with weight 0.05, the old setting here, let a sweep on
    MNIST-1D run on through raw losses 9x its best. Very noisy batch losses (a near-zero loss on small batches) can double the average
    by chance: raise ``diverge_threshold`` there.

    Afterwards the model's weights, buffers, gradients and mode, the optimizer's state and LRs,
    and the torch (CPU, and CUDA if initialised), numpy and Python RNG states are restored
    bit-exactly. The suggestion is :func:`suggest_lr` of the smoothed curve, skipping its
    first ``max(1, n_steps // 10)`` points.

    Args:
        model: the model to train; moved to ``device`` by the caller.
        optimizer: an optimizer over the model's parameters.
        train_loader: yields ``(inputs, targets)``.
        loss_fn: ``loss_fn(model(inputs), targets)`` returns a scalar loss.
        min_lr: the first reference LR.
        max_lr: the last reference LR.
        n_steps: the number of steps (batches) of the sweep.
        smoothing: the EMA weight of the newest loss (0.1 is an EMA with beta 0.9).
        diverge_threshold: stop when the smoothed loss exceeds this times its minimum so far.
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
    skip_start = max(1, n_steps // 10)
    snapshot = _Snapshot(model, optimizer)
    try:
        lrs, losses, smoothed, reason = _sweep(
            model,
            optimizer,
            _cycle(train_loader),
            loss_fn,
            (min_lr, max_lr, n_steps),
            smoothing,
            (diverge_threshold, skip_start),
            device,
        )
    finally:
        snapshot.restore(model, optimizer)
    suggested, span, why_not = suggest_lr(lrs, smoothed, skip_start=skip_start)
    return LRFinderResult(
        tuple(lrs), tuple(losses), tuple(smoothed), suggested, span, reason, why_not
    )


def _sweep(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Iterator[Any],
    loss_fn: Callable[[Any, Any], torch.Tensor],
    schedule: tuple[float, float, int],
    smoothing: float,
    divergence: tuple[float, int],
    device: torch.device | str | None,
) -> tuple[list[float], list[float], list[float], str]:
    min_lr, max_lr, n_steps = schedule
    diverge_threshold, skip_start = divergence
    groups = optimizer.param_groups
    reference = max(group["lr"] for group in groups)
    ratios = [group["lr"] / reference if reference > 0 else 1.0 for group in groups]
    gamma = (max_lr / min_lr) ** (1.0 / (n_steps - 1))
    beta = 1.0 - smoothing
    lrs: list[float] = []
    losses: list[float] = []
    smoothed: list[float] = []
    average = 0.0
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
            return lrs, losses, smoothed, "non-finite loss"
        loss.backward()
        optimizer.step()
        average = beta * average + (1.0 - beta) * value
        lrs.append(lr)
        losses.append(value)
        smoothed.append(average / (1.0 - beta ** (i + 1)))
        if i >= skip_start and smoothed[-1] > diverge_threshold * min(smoothed[skip_start:]):
            return lrs, losses, smoothed, "diverged"
    return lrs, losses, smoothed, "completed"
