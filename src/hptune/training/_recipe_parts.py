"""The pieces the training recipe's loop is made of: seeding, device, data, evaluation,
divergence watch and the memory-fitted micro-batch. Each is small and tested through
:func:`hptune.training.recipe.train`.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

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
_CPU = torch.device("cpu")


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


#: In-memory splits that together take at most this share of the GPU's free memory are
#: moved onto it once, before training.
DATA_ON_GPU_SHARE = 0.25


class Splits(NamedTuple):
    """The three splits the recipe reads (``.train``, ``.val``, ``.test``)."""

    train: Dataset
    val: Dataset
    test: Dataset


def splits_on(data: Any, device: torch.device, free_bytes: int | None = None) -> Any:
    """``data``'s splits moved onto ``device`` when they are in-memory tensors that fit.

    On a GPU, a batch gathered on the host and copied at every step costs a gather, a copy
    and (from pageable memory) a wait for the GPU; small models then wait on their input.
    When all three splits are ``TensorDataset`` s that together take at most
    :data:`DATA_ON_GPU_SHARE` of the device's free memory (``free_bytes``, asked of CUDA
    when None), they are copied once and every batch is gathered on the device. Anything
    else, and every split on the CPU, is returned as it is. Same values, same results.
    """
    if device.type == "cpu":
        return data
    parts = (data.train, data.val, data.test)
    if not all(isinstance(part, TensorDataset) for part in parts):
        return data
    size = sum(t.numel() * t.element_size() for part in parts for t in part.tensors)
    if free_bytes is None:
        free_bytes = torch.cuda.mem_get_info(device)[0]
    if size > DATA_ON_GPU_SHARE * free_bytes:
        logger.info("the data (%d MB) stay on the CPU: too large to copy to %s", size >> 20, device)
        return data
    moved = [TensorDataset(*(t.to(device) for t in part.tensors)) for part in parts]
    return Splits(*moved)


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
        device = self.tensors[0].device
        if device.type != "cpu":
            # One copy per epoch: indexing device tensors with a host index would copy it
            # from pageable memory at every batch, and such a copy waits for the GPU.
            order = order.to(device)
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
    eval mode; the model is put back in train mode).

    The batch losses and counts stay on the device until the split is done; the mean is
    summed on the host in float64, batch by batch (as ``sum(loss_b * n_b) / n``).
    """
    model.eval()
    losses, corrects, sizes = [], [], []
    if isinstance(dataset, TensorDataset) and len(dataset) <= _EVAL_BATCH:
        # One batch: the split itself (no loader to build), with the one draw from torch's
        # global generator that a loader's iterator makes (see TensorBatches).
        torch.empty((), dtype=torch.int64).random_()
        batches = [dataset.tensors]
    else:
        batches = make_loader(dataset, _EVAL_BATCH, shuffle=False)
    for inputs, targets in batches:
        inputs, targets = inputs.to(device), targets.to(device)
        if amp:
            with autocast(device, amp):
                logits = model(inputs)
                loss = loss_fn(logits, targets)
        else:  # entering even a disabled autocast costs a few us
            logits = model(inputs)
            loss = loss_fn(logits, targets)
        losses.append(loss)
        corrects.append((logits.argmax(dim=-1) == targets).sum())
        sizes.append(len(targets))
    model.train()
    count = sum(sizes)
    if count == 0:
        raise ConfigError("the evaluation split is empty; a task needs val and test samples.")
    total = 0.0
    for loss, size in zip(host_values(losses), sizes):
        total += loss * size  # in float64, as the loop summed on the device before
    return total / count, sum(host_values(corrects)) / count


def host_values(scalars: list[torch.Tensor]) -> list[Any]:
    """The values of 0-d tensors of one device, exactly (a float32 value as the float64
    it is): on a GPU in one transfer, the one sync point; on the CPU one by one, where a
    read costs nothing and a stack would cost a tensor op (~5 us per epoch)."""
    if scalars[0].device.type == "cpu":
        return [scalar.item() for scalar in scalars]
    return torch.stack(scalars).tolist()


def autocast(device: torch.device, amp: bool) -> torch.autocast:
    """float16 autocast on CUDA when ``amp``; a disabled (no-op) autocast otherwise."""
    return torch.autocast(device_type=device.type, dtype=torch.float16, enabled=amp)


#: Optimizer steps between two reads of the training losses from the device (they are also
#: read at the end of every epoch): a diverged run stops at most this many steps after the
#: step that diverged. One read per 16 steps costs a 16th of the host-device syncs of one per
#: step (a read is a sync point on a GPU), and a NaN run wastes at most 15 steps.
DIVERGENCE_CHECK_STEPS = 16


class DivergenceWatch:
    """The training loss per epoch, and the rule that stops a run whose loss diverges.

    The rule: any NaN/inf window loss, or a running mean of the window losses (an
    exponential moving average with weight 0.1 on the newest, bias-corrected) above
    ``factor`` times the loss of the first optimizer step. The average keeps one noisy
    batch from ending a healthy run; a real divergence grows without bound and trips it
    within a few steps.

    The losses stay where they were computed: :meth:`add` keeps a reference to each
    micro-batch's loss and :meth:`end_step` closes an optimizer step, so the step itself
    never waits for the device. Every ``every`` steps, and at :meth:`end_epoch`, the
    pending losses are read in one transfer and the rule runs over them in step order, so
    the message names the step that diverged, whenever it is read. A window's loss is
    summed in float32 as ``sum(loss_i * n_i)`` in micro-batch order (the sum the loop
    formed on the device when it read every step), then divided by the window's samples.

    Args:
        factor: The explosion threshold, > 1 (checked by ``TrainingOptions``).
        every: Optimizer steps between two reads.

    Example:
        >>> watch = DivergenceWatch(10.0)
        >>> watch.add(torch.tensor(2.0), 4)
        >>> watch.end_step(epoch=1, step=1)
        >>> watch.end_epoch()
        2.0
    """

    _WEIGHT = 0.1

    def __init__(self, factor: float, every: int = DIVERGENCE_CHECK_STEPS) -> None:
        self.factor = float(factor)
        self.every = every
        self.initial: float | None = None
        self.n_reads = 0
        self._average = 0.0
        self._n = 0
        self._losses: list[torch.Tensor] = []
        self._sizes: list[int] = []
        self._steps: list[tuple[int, int, int]] = []  # (end in _losses, epoch, step)
        self._epoch_loss = 0.0
        self._epoch_samples = 0

    def add(self, loss: torch.Tensor, n_samples: int) -> None:
        """Record one micro-batch's mean loss over its ``n_samples`` (no sync)."""
        self._losses.append(loss.detach())
        self._sizes.append(n_samples)

    def end_step(self, epoch: int, step: int) -> None:
        """Close optimizer step ``step``; read the device when ``every`` steps are pending.

        Raises:
            TrialDiverged: A pending step diverged.
        """
        self._steps.append((len(self._losses), epoch, step))
        if len(self._steps) >= self.every:
            self.read()

    def end_epoch(self) -> float:
        """Read what is pending; return the epoch's mean training loss per sample (NaN for
        an epoch without steps) and start the next epoch's."""
        self.read()
        mean = self._epoch_loss / self._epoch_samples if self._epoch_samples else math.nan
        self._epoch_loss, self._epoch_samples = 0.0, 0
        return mean

    def read(self) -> None:
        """Read the pending losses from the device and apply the rule to each step in order."""
        if not self._steps:
            return
        values = host_values(self._losses)
        sizes, steps = self._sizes, self._steps
        self._losses, self._sizes, self._steps = [], [], []
        self.n_reads += 1
        start = 0
        for end, epoch, step in steps:
            if end - start == 1:  # one micro-batch: its product alone (0 + x is x)
                n_samples = sizes[start]
                total = np.float32(values[start]) * np.float32(n_samples)
            else:
                total, n_samples = np.float32(0.0), 0
                for value, size in zip(values[start:end], sizes[start:end]):
                    total = np.float32(total + np.float32(value) * np.float32(size))
                    n_samples += size
            start = end
            loss = float(total) / n_samples
            self._epoch_loss += loss * n_samples
            self._epoch_samples += n_samples
            self.update(loss, epoch, step)

    def update(self, loss: float, epoch: int, step: int) -> None:
        """Apply the rule to one optimizer step's loss; raise :class:`TrialDiverged` on
        divergence."""
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


class BestEpoch:
    """The best validation epoch so far: its value, its number and a CPU copy of its weights.

    The test split is evaluated once, on those weights, by :meth:`test_figures` when the
    run ends (or is pruned, or diverges), not after every epoch that improves: the same
    figures for one evaluation instead of one per improving epoch.

    Every evaluation draws one number from torch's global generator (as a DataLoader does;
    see :class:`TensorBatches`). The test split used to be evaluated right after each
    improving epoch; :meth:`offer` makes that draw there still, and :meth:`test_figures`
    restores the generator after its own, so the global random stream (dropout masks) is
    what it was.

    Args:
        sign: ``1.0`` when a higher value is better, ``-1.0`` when lower is.
    """

    def __init__(self, sign: float) -> None:
        self.sign = sign
        self.value = -math.inf  # sign * the best value
        self.epoch: int | None = None
        self.state: dict[str, Any] | None = None

    def offer(self, epoch: int, value: float, model: nn.Module) -> bool:
        """Keep ``epoch`` when ``value`` beats the best so far (ties keep the earlier one)."""
        if not self.sign * value > self.value:
            return False
        self.value, self.epoch = self.sign * value, epoch
        self.state = cpu_state(model)
        torch.empty((), dtype=torch.int64).random_()  # the test evaluation's draw
        return True

    def test_figures(
        self, model: nn.Module, dataset: Dataset, loss_fn: LossFn, device: torch.device,
        amp: bool, *, current_epoch: int,
    ) -> tuple[float, float] | None:  # fmt: skip
        """Test loss and accuracy of the best epoch's weights; None before any epoch.

        ``model`` holds the weights of ``current_epoch``; it is given the best ones for the
        evaluation and its own back afterwards.
        """
        if self.state is None:
            return None
        rng = torch.get_rng_state()
        try:
            if self.epoch == current_epoch:
                return evaluate(model, dataset, loss_fn, device, amp)
            current = _clone_state(model)
            model.load_state_dict(self.state)
            try:
                return evaluate(model, dataset, loss_fn, device, amp)
            finally:
                model.load_state_dict(current)
        finally:
            torch.set_rng_state(rng)


def _clone_state(model: nn.Module) -> dict[str, Any]:
    return {
        key: value.detach().clone() if isinstance(value, torch.Tensor) else value
        for key, value in model.state_dict().items()
    }


def cpu_state(model: nn.Module) -> dict[str, Any]:
    """A CPU copy of ``model.state_dict()`` (non-tensor extra state copied as it is)."""
    return {  # state_dict() gives detached tensors
        key: value.to(_CPU, copy=True) if isinstance(value, torch.Tensor) else value
        for key, value in model.state_dict().items()
    }


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
