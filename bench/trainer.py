"""Trainer speed: hptune's training recipe against a hand-written loop and PyTorch Lightning.

The three train the SAME model (the built-in task's, built right after ``torch.manual_seed``),
on the SAME in-memory data, with the SAME hyperparameters (:data:`HPARAMS`: AdamW, constant
LR, no warmup, weight decay on weights only) and batch size, for ``1 + epochs`` epochs.
Each epoch is the same work in all three: one shuffled pass over the training split and one
evaluation of the validation split. The first epoch is a warm-up (allocator, lazy init,
Lightning's set-up) and is not timed; throughput is::

    samples/s = epochs * len(train split) / (time at the end of the last epoch's evaluation
                                             - time at the end of the warm-up epoch's)

so start-up (data, model, ``Trainer`` construction) is excluded too. Epoch ends are stamped
by the loops themselves: the hand loop after its evaluation, hptune through the live
:class:`hptune.Trial` it reports to (``trial.report`` runs right after the evaluation), and
Lightning by a callback at ``on_validation_end``.

* **hand** is the limit: tensors indexed by a shuffled permutation from a seeded
  ``torch.Generator``, ``zero_grad``/forward/backward/step, no loss bookkeeping, validation
  as one forward pass with one ``.item()``.
* **hptune** is ``hptune.training.recipe.train`` with ``device="cpu"`` and its defaults
  (divergence watch on, no accumulation since the batch fits). It also measures the
  validation loss, and evaluates the test split once, on the best epoch's weights, after its
  last report (outside the timed span; one evaluation of 1000 samples per run).
* **lightning** is a ``LightningModule`` around the same model with logging, checkpointing,
  progress bar, model summary and the sanity check off, on the CPU accelerator, fed a
  ``DataLoader`` over a ``BatchSampler`` (one gather per batch, not per sample; the same
  batches as the other two) as a user who knows the trick would write it.

Repetitions are interleaved (hand, hptune, lightning, hand, ...) so a change in machine load
hits all three alike; the table gives the median of the repetitions and the 1-minute load
average at the end of each row (numbers taken under load move). ``--clock cpu`` stamps with
this thread's CPU time instead of the wall clock (with one torch thread the training runs on
it), so the time a run waits for a core on a shared machine is not counted. Every run's final
validation accuracy is kept as a check that the same work was done: with the same seed, data
order and optimizer the three reach the same accuracy, to the printed digit.

Run from the repository root: ``python -m bench.trainer [--quick] [--threads 1 2]``
(needs ``pip install -c constraints.txt lightning``; without it the Lightning column is
skipped). Prints a Markdown table for ``bench/RESULTS.md``. ``--device cuda`` runs every
trainer on the GPU, on :data:`CUDA_CASES` (a ResNet-18 on synthetic images among them);
each loop's epoch ends with a host read (its accuracy), so the stamps wait for the GPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from bench import synthetic
from hptune.tasks import get_task
from hptune.tasks.data import TaskData
from hptune.training.recipe import train
from hptune.trial import Trial

#: The hyperparameters every trainer uses. The recipe reads them as its trial config; the
#: hand loop and Lightning build the same AdamW by hand (decay on weights, not biases/norms).
HPARAMS: dict[str, Any] = {
    "lr": 1e-3,
    "weight_decay": 1e-2,
    "optimizer": "adamw",
    "scheduler": "constant",
    "warmup_epochs": 0,
}
SEED = 0

#: The clock the epoch-end stamps read: ``time.perf_counter`` (wall) or ``time.thread_time``
#: (this thread's CPU time; ``--clock cpu``).
CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.thread_time}
clock = CLOCKS["wall"]

synthetic.register()

#: (task, batch sizes) of the full run; --quick keeps the first two batch sizes.
CASES: dict[str, tuple[int, ...]] = {
    "mnist1d-mlp": (32, 128, 512),
    "mnist1d-cnn": (32, 128),
    "digits-mlp": (32, 128, 512),
}
#: The cases on a GPU (``--device cuda``): the built-in tasks at a small and a large batch,
#: and a ResNet-18 on synthetic images (``bench.synthetic``), large enough to keep it busy.
CUDA_CASES: dict[str, tuple[int, ...]] = {
    "mnist1d-mlp": (32, 512),
    "mnist1d-cnn": (32, 512),
    "digits-mlp": (32, 128),
    synthetic.NAME: (256,),
}


@dataclass(frozen=True)
class Run:
    """One timed training run: throughput after the warm-up epoch, final val accuracy."""

    trainer: str
    samples_per_s: float
    val_accuracy: float
    threads: int


def adamw(model: nn.Module) -> torch.optim.Optimizer:
    """The optimizer hptune builds for :data:`HPARAMS`: decayed weights first, then the rest."""
    params = [p for p in model.parameters() if p.requires_grad]
    decayed = [p for p in params if p.ndim > 1]
    undecayed = [p for p in params if p.ndim <= 1]
    groups = [
        {"params": decayed, "weight_decay": HPARAMS["weight_decay"]},
        {"params": undecayed, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=HPARAMS["lr"])


def batched_loader(
    dataset: torch.utils.data.TensorDataset, batch_size: int, seed: int, pin_memory: bool = False
) -> Any:
    """Shuffled batches gathered one batch at a time by a DataLoader: the loader the recipe
    used before ``TensorBatches`` (same batches, same random draws)."""
    generator = torch.Generator().manual_seed(seed)
    sampler = torch.utils.data.RandomSampler(dataset, generator=generator)
    batches = torch.utils.data.BatchSampler(sampler, batch_size, drop_last=False)
    return torch.utils.data.DataLoader(
        dataset, sampler=batches, batch_size=None, pin_memory=pin_memory
    )


def cuda_like_the_recipe(device: str) -> None:
    """On a GPU, cuDNN as the recipe sets it (deterministic, no autotuning), for every
    trainer alike: deterministic convolutions can be slower, and the comparison is of the
    loops, not of cuDNN's modes."""
    if device == "cuda":
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


def throughput(stamps: Sequence[float], n_train: int) -> float:
    """Samples per second between the end of the warm-up epoch and the end of the last."""
    epochs = len(stamps) - 1
    return epochs * n_train / (stamps[-1] - stamps[0])


def run_hand(
    task_name: str, batch_size: int, epochs: int, device: str = "cpu"
) -> tuple[list[float], float]:
    """The minimal loop. Returns the epoch-end stamps and the last validation accuracy.

    On a GPU the data live there and each epoch's permutation is copied there once, so no
    step waits for the host.
    """
    cuda_like_the_recipe(device)
    task = get_task(task_name)
    data = task.datasets()
    x, y = (t.to(device) for t in data.train.tensors)
    x_val, y_val = (t.to(device) for t in data.val.tensors)
    torch.manual_seed(SEED)
    model = task.build_model(dict(HPARAMS)).to(device)
    optimizer = adamw(model)
    generator = torch.Generator().manual_seed(SEED)
    stamps, accuracy = [], 0.0
    for _ in range(epochs + 1):
        model.train()
        order = torch.randperm(len(x), generator=generator).to(device)
        # RandomSampler (hptune's and Lightning's loader) draws a second, empty-sliced
        # permutation per epoch; drawing it too keeps all three on the same data order.
        torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), batch_size):
            index = order[start : start + batch_size]
            loss = F.cross_entropy(model(x[index]), y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            accuracy = (model(x_val).argmax(dim=-1) == y_val).float().mean().item()
        stamps.append(clock())
    return stamps, accuracy


def run_hptune(
    task_name: str, batch_size: int, epochs: int, device: str = "cpu", data: TaskData | None = None
) -> tuple[list[float], float]:
    """``hptune.training.recipe.train``; the live trial's reporter stamps each epoch's end."""
    cuda_like_the_recipe(device)
    task = get_task(task_name)
    data = task.datasets() if data is None else data
    config = {**HPARAMS, "batch_size": batch_size}
    stamps: list[float] = []

    def reporter(step: int, value: float) -> bool:
        stamps.append(clock())
        return False  # never prune

    trial = Trial(0, config, SEED, reporter=reporter)
    result = train(
        config, task, epochs=epochs + 1, seed=SEED, trial=trial, data=data, device=device
    )
    return stamps, result.final_value


def run_hptune_no_test(
    task_name: str, batch_size: int, epochs: int, device: str = "cpu"
) -> tuple[list[float], float]:
    """The recipe with a one-sample test split: what its test evaluations cost (ablation)."""
    task = get_task(task_name)
    data = task.datasets()
    one = torch.utils.data.TensorDataset(*(tensor[:1] for tensor in data.test.tensors))
    short = dataclasses.replace(data, test=one)
    return run_hptune(task_name, batch_size, epochs, device, data=short)


def run_lightning(
    task_name: str, batch_size: int, epochs: int, device: str = "cpu"
) -> tuple[list[float], float]:
    """A plain LightningModule, everything optional turned off; on a GPU it is fed from
    pinned memory, as Lightning's documentation advises."""
    import lightning as L  # noqa: N812 (Lightning's own convention)

    cuda_like_the_recipe(device)
    task = get_task(task_name)
    data = task.datasets()
    torch.manual_seed(SEED)
    model = task.build_model(dict(HPARAMS))
    stamps: list[float] = []

    class Module(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model = model
            self.val_accuracy = 0.0

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            inputs, targets = batch
            return F.cross_entropy(self.model(inputs), targets)

        def validation_step(self, batch: Any, batch_idx: int) -> None:
            inputs, targets = batch
            correct = self.model(inputs).argmax(dim=-1) == targets
            self.val_accuracy = correct.float().mean().item()

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return adamw(self.model)

    class Stamp(L.Callback):
        def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
            stamps.append(clock())

    module = Module()
    trainer = L.Trainer(
        accelerator="gpu" if device == "cuda" else "cpu",
        devices=1,
        max_epochs=epochs + 1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=[Stamp()],
    )
    n_val = len(data.val)
    pin = device == "cuda"
    # One validation batch, like the hand loop.
    val = torch.utils.data.DataLoader(data.val, batch_size=n_val, pin_memory=pin)
    trainer.fit(module, batched_loader(data.train, batch_size, SEED, pin_memory=pin), val)
    return stamps, module.val_accuracy


RUNNERS: dict[str, Callable[[str, int, int, str], tuple[list[float], float]]] = {
    "hand": run_hand,
    "hptune": run_hptune,
    "lightning": run_lightning,
    "hptune-no-test": run_hptune_no_test,
}


def measure(
    trainer: str, task_name: str, batch_size: int, epochs: int, threads: int, device: str = "cpu"
) -> Run:
    """One run of ``trainer`` with ``threads`` torch threads on ``device``."""
    torch.set_num_threads(threads)
    stamps, accuracy = RUNNERS[trainer](task_name, batch_size, epochs, device)
    if torch.get_num_threads() != threads:  # a trainer that changed it would be unfair
        raise RuntimeError(f"{trainer} changed torch threads to {torch.get_num_threads()}")
    n_train = len(get_task(task_name).datasets().train)
    return Run(trainer, throughput(stamps, n_train), accuracy, threads)


def lightning_available() -> bool:
    try:
        import lightning  # noqa: F401
    except ImportError:
        return False
    return True


def quiet_lightning() -> None:
    """Lightning's advice (num_workers, GPU available, ...) is noise in a benchmark's output."""
    import lightning  # noqa: F401 (its import sets its loggers' levels: set ours after it)

    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="lightning")
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")


def benchmark(
    cases: dict[str, tuple[int, ...]], epochs: int, repeats: int, threads: Sequence[int],
    trainers: Sequence[str], device: str = "cpu",
) -> list[dict[str, Any]]:  # fmt: skip
    """Every (threads, task, batch) row: median samples/s and accuracies per trainer."""
    rows = []
    for n_threads in threads:
        for task_name, batch_sizes in cases.items():
            for batch_size in batch_sizes:
                runs: dict[str, list[Run]] = {name: [] for name in trainers}
                for _ in range(repeats):  # interleaved: load drift hits every trainer alike
                    for name in trainers:
                        run = measure(name, task_name, batch_size, epochs, n_threads, device)
                        runs[name].append(run)
                # The 1-minute load average as the row ends: other work on the machine
                # skews samples/s, so the table says how quiet it was.
                row = {"threads": n_threads, "task": task_name, "batch": batch_size}
                row["load"] = os.getloadavg()[0]
                for name, trainer_runs in runs.items():
                    row[name] = statistics.median(r.samples_per_s for r in trainer_runs)
                    row[f"{name}_runs"] = [asdict(r) for r in trainer_runs]
                    row[f"{name}_acc"] = trainer_runs[-1].val_accuracy
                print(format_row(row, trainers), file=sys.stderr, flush=True)
                rows.append(row)
    return rows


def format_row(row: dict[str, Any], trainers: Sequence[str]) -> str:
    cells = [str(row["threads"]), row["task"], str(row["batch"])]
    cells += [f"{row[name]:,.0f}" for name in trainers]
    cells += [f"{row[name] / row['hand']:.2f}" for name in trainers if name != "hand"]
    cells.append(" / ".join(f"{row[f'{name}_acc']:.3f}" for name in trainers))
    cells.append(f"{row['load']:.1f}")
    return "| " + " | ".join(cells) + " |"


def table(rows: list[dict[str, Any]], trainers: Sequence[str]) -> str:
    """The Markdown table of RESULTS.md."""
    others = [name for name in trainers if name != "hand"]
    head = ["threads", "task", "batch"] + [f"{name} samples/s" for name in trainers]
    head += [f"{name}/hand" for name in others] + [f"val acc ({' / '.join(trainers)})", "load"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + [format_row(row, trainers) for row in rows])


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m bench.trainer`` (and ``python -m bench trainer``)."""
    parser = argparse.ArgumentParser(prog="python -m bench.trainer", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer cases, epochs, threads")
    parser.add_argument(
        "--epochs", type=int, default=None, help="timed epochs (default 10, --quick 5)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="repetitions per cell")
    parser.add_argument("--threads", type=int, nargs="+", default=None, help="default 1 2")
    parser.add_argument(
        "--trainers", nargs="+", choices=list(RUNNERS), default=None,
        help="columns, hand first (default: hand hptune lightning)",
    )  # fmt: skip
    parser.add_argument(
        "--clock", choices=list(CLOCKS), default="wall",
        help="wall time, or this thread's CPU time (for a loaded machine; needs --threads 1)",
    )  # fmt: skip
    parser.add_argument(
        "--device", choices=("cpu", "cuda"), default="cpu",
        help="where every trainer trains; cuda runs the GPU cases (CUDA_CASES)",
    )  # fmt: skip
    parser.add_argument("--tasks", nargs="+", default=None, help="only these tasks' rows")
    parser.add_argument("--json", default=None, help="also write every run to this file")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: CUDA is not available here")
    global clock
    clock = CLOCKS[args.clock]
    logging.basicConfig(level=logging.WARNING)
    trainers = args.trainers or ["hand", "hptune", "lightning"]
    if trainers[0] != "hand":
        parser.error(f"--trainers must start with hand (the ratios divide by it); got {trainers}")
    if "lightning" in trainers and not lightning_available():
        print("lightning is not installed: its column is skipped", file=sys.stderr)
        trainers.remove("lightning")
    if "lightning" in trainers:
        quiet_lightning()
    table_of = CUDA_CASES if args.device == "cuda" else CASES
    if args.quick:
        cases = {task: sizes[:2] for task, sizes in table_of.items()}
        epochs, threads = args.epochs or 5, args.threads or [1]
    else:
        # On a GPU the host threads only launch kernels: one is enough.
        default_threads = [1] if args.device == "cuda" else [1, 2]
        cases, epochs, threads = table_of, args.epochs or 10, args.threads or default_threads
    if args.tasks:
        cases = {task: sizes for task, sizes in cases.items() if task in args.tasks}
    if args.clock == "cpu" and threads != [1]:
        parser.error("--clock cpu counts one thread's time: use it with --threads 1")
    rows = benchmark(cases, epochs, args.repeats, threads, trainers, args.device)
    print(table(rows, trainers))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"epochs": epochs, "hparams": HPARAMS, "rows": rows}, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
