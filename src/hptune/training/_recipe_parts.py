"""The pieces the training recipe's loop is made of: seeding, device, data, evaluation,
divergence watch and the memory-fitted micro-batch. Each is small and tested through
:func:`hptune.training.recipe.train`.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    RandomSampler,
    SequentialSampler,
    TensorDataset,
    default_collate,
)

from hptune._checks import Int, check
from hptune.exceptions import ConfigError
from hptune.training.batch_size import find_max_batch_size
from hptune.trial import TrialDiverged

logger = logging.getLogger("hptune.training.recipe")

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
_EVAL_BATCH = 1024


def seed_everything(seed: int, device: torch.device) -> torch.Generator:
    """Seed Python, NumPy and torch; return the generator that shuffles the training data.

    On CUDA, cuDNN is also made deterministic (cheap for the small models tuned here).
    ``torch.use_deterministic_algorithms`` is left alone: it is process-wide, needs
    ``CUBLAS_WORKSPACE_CONFIG`` set before CUDA starts, and CPU kernels are deterministic
    for a fixed thread count without it.
    """
    check("seed", seed, Int(), fix="use e.g. trial.seed")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if device.type == "cuda":
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    return torch.Generator().manual_seed(seed)


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` is CUDA when available, else the CPU; a CUDA device must exist."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(
            f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got {device!r}."
        ) from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"device={device!r} but CUDA is not available here; use device='auto' or 'cpu'."
        )
    return resolved


def make_loader(
    dataset: Dataset, batch_size: int, *, shuffle: bool, generator: torch.Generator | None = None
) -> Iterable[Any]:
    """Batches of ``dataset``; the last, short batch is kept.

    A ``TensorDataset`` is indexed with a whole batch of indices at once (one gather per
    tensor instead of one ``__getitem__`` per sample, ~50x faster for small samples); by
    :class:`TensorBatches` (no DataLoader) unless a shuffle lacks its ``generator``.
    """
    if isinstance(dataset, TensorDataset) and (generator is not None or not shuffle):
        return TensorBatches(dataset, batch_size, generator if shuffle else None)
    sampler = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
    if isinstance(dataset, TensorDataset):
        batches = BatchSampler(sampler, batch_size, drop_last=False)
        return DataLoader(dataset, sampler=batches, batch_size=None)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler)


class TensorBatches:
    """The batches ``DataLoader(dataset, sampler=BatchSampler(RandomSampler(dataset,
    generator=generator), batch_size, False), batch_size=None)`` gives, without its per-step
    cost: indices stay a tensor (the DataLoader turns them into a Python list and back),
    about 25 us saved per batch of 32 and 50 us per batch of 128 on one CPU thread, 5-10% of
    a small model's step (``bench/trainer.py``).

    The random draws are the DataLoader's, so runs give the same results as with it: per
    epoch one permutation from ``generator``, plus a second one RandomSampler draws and
    uses none of, plus one draw from torch's global generator (the DataLoader's iterator
    takes its workers' base seed from it); dropout masks therefore stay the same too.

    Args:
        dataset: The tensors, indexed along dim 0.
        batch_size: Samples per batch; the last batch may be short.
        generator: Shuffles every epoch; ``None`` keeps the dataset's order.
    """

    def __init__(
        self, dataset: TensorDataset, batch_size: int, generator: torch.Generator | None
    ) -> None:
        self.tensors = dataset.tensors
        self.batch_size = batch_size
        self.generator = generator
        self.n_samples = len(dataset)

    def __len__(self) -> int:
        return -(-self.n_samples // self.batch_size)

    def __iter__(self) -> Iterator[list[torch.Tensor]]:
        # Drawn when iteration starts, as the DataLoader iterator does (not at the first batch).
        torch.empty((), dtype=torch.int64).random_()
        return self._batches()

    def _batches(self) -> Iterator[list[torch.Tensor]]:
        n, size = self.n_samples, self.batch_size
        if self.generator is None:
            for start in range(0, n, size):
                yield [tensor[start : start + size] for tensor in self.tensors]
            return
        order = torch.randperm(n, generator=self.generator)
        for start in range(0, n, size):
            if start + size > n:  # RandomSampler runs dry while it gathers a short last batch
                torch.randperm(n, generator=self.generator)
            index = order[start : start + size]
            yield [tensor[index] for tensor in self.tensors]
        if n % size == 0:  # ... or when asked for a batch after a full last one
            torch.randperm(n, generator=self.generator)


@torch.no_grad()
def evaluate(
    model: nn.Module, dataset: Dataset, loss_fn: LossFn, device: torch.device, amp: bool
) -> tuple[float, float]:
    """Mean loss per sample and accuracy (argmax of the logits equals the label) of
    ``model`` on ``dataset``, as the recipe measures its validation and test splits (in
    eval mode; the model is put back in train mode)."""
    model.eval()
    total_loss = torch.zeros((), device=device, dtype=torch.float64)
    correct = torch.zeros((), device=device, dtype=torch.int64)
    count = 0
    for inputs, targets in make_loader(dataset, _EVAL_BATCH, shuffle=False):
        inputs, targets = inputs.to(device), targets.to(device)
        with autocast(device, amp):
            logits = model(inputs)
            loss = loss_fn(logits, targets)
        total_loss += loss.double() * len(targets)
        correct += (logits.argmax(dim=-1) == targets).sum()
        count += len(targets)
    model.train()
    if count == 0:
        raise ConfigError("the evaluation split is empty; a task needs val and test samples.")
    # One sync for the whole split, not one per batch.
    return total_loss.item() / count, correct.item() / count


def autocast(device: torch.device, amp: bool) -> torch.autocast:
    """float16 autocast on CUDA when ``amp``; a disabled (no-op) autocast otherwise."""
    return torch.autocast(device_type=device.type, dtype=torch.float16, enabled=amp)


class DivergenceWatch:
    """Stops a run whose training loss turns non-finite or explodes.

    The rule: any NaN/inf window loss, or a running mean of the window losses (an
    exponential moving average with weight 0.1 on the newest, bias-corrected) above
    ``factor`` times the loss of the first optimizer step. The average keeps one noisy
    batch from ending a healthy run; a real divergence grows without bound and trips it
    within a few steps.

    Args:
        factor: The explosion threshold, > 1 (checked by ``TrainingOptions``).
    """

    _WEIGHT = 0.1

    def __init__(self, factor: float) -> None:
        self.factor = float(factor)
        self.initial: float | None = None
        self._average = 0.0
        self._n = 0

    def update(self, loss: float, epoch: int, step: int) -> None:
        """Record one optimizer step's loss; raise :class:`TrialDiverged` on divergence."""
        if not math.isfinite(loss):
            raise TrialDiverged(f"loss became {loss} at epoch {epoch} step {step}")
        if self.initial is None:
            self.initial = loss
        self._n += 1
        self._average += self._WEIGHT * (loss - self._average)
        running = self._average / (1.0 - (1.0 - self._WEIGHT) ** self._n)
        if self.initial > 0 and running > self.factor * self.initial:
            raise TrialDiverged(
                f"loss exploded at epoch {epoch} step {step}: running training loss "
                f"{running:.4g} > divergence_factor {self.factor:g} x initial loss "
                f"{self.initial:.4g}"
            )


def _make_batch(dataset: Dataset) -> Callable[[int], tuple[Any, Any]]:
    """``make_batch(b)``: the first ``b`` training samples (repeated if fewer), collated."""

    def make_batch(size: int) -> tuple[Any, Any]:
        indices = [i % len(dataset) for i in range(size)]  # type: ignore[arg-type]
        if isinstance(dataset, TensorDataset):
            index = torch.tensor(indices)
            inputs, targets = (t[index] for t in dataset.tensors)
            return inputs, targets
        inputs, targets = default_collate([dataset[i] for i in indices])
        return inputs, targets

    return make_batch


def fit_micro_batch(
    model: nn.Module, dataset: Dataset, loss_fn: LossFn, device: torch.device, cap: int
) -> int:
    """The largest micro-batch (at most ``cap``) whose training step fits on ``device``.

    Runs :func:`~hptune.training.batch_size.find_max_batch_size` with real training steps;
    the RNG state is restored afterwards, so the run that follows is the one the seed gives.
    When ``cap`` itself fits it is used whole (the real batches are exactly the probe's);
    below that, 10% headroom is kept for allocator fragmentation.
    """
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        found = find_max_batch_size(
            model,
            _make_batch(dataset),
            loss_fn,
            max_batch_size=cap,
            safety_margin=1.0,
            device=device,
        )
    fitted = cap if found >= cap else max(1, math.floor(found * 0.9))
    logger.info("fitted micro-batch: %d (effective batch %d)", fitted, cap)
    return fitted
