"""Which workers to start, on which device, with how many threads (a pure plan).

Kept apart from the executor so the policy can be tested on a CPU-only machine with
made-up GPU lists.
"""

from __future__ import annotations

import collections
import dataclasses
import os
from collections.abc import Sequence

from hptune._checks import Int, Number, check, optional
from hptune.exceptions import ConfigError

#: Environment variables that cap the threads of torch's OpenMP/MKL pools and of NumPy's BLAS.
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


@dataclasses.dataclass(frozen=True)
class WorkerSlot:
    """One planned worker process.

    Args:
        index: Position of the worker in the pool (a replacement keeps its slot).
        device: ``"cpu"`` or ``"cuda:<id>"``, with ``<id>`` as the driver sees the GPU
            (inside the worker that GPU is the only one visible, so it is ``cuda:0`` there).
        threads: Torch intra-op threads for the worker.
        env: Variables set in the worker before torch is imported.
        memory_fraction: The share of its GPU's memory the worker's allocator may take
            (``torch.cuda.set_per_process_memory_fraction``) when it shares the GPU with
            other workers; ``None`` when it has the GPU to itself, or runs on the CPU.
    """

    index: int
    device: str
    threads: int
    env: dict[str, str]
    memory_fraction: float | None = None


#: The share of a shared GPU's memory its workers may take together; the rest is left to
#: their CUDA contexts (a few hundred MB each) and to the allocators' fragmentation.
SHARED_GPU_MEMORY = 0.9


def plan_workers(
    n_workers: int | None,
    gpus: Sequence[str],
    *,
    cpu_count: int,
    trials_per_device: int | None = None,
    threads_per_worker: int | None = None,
    hide_gpus: bool = False,
) -> list[WorkerSlot]:
    """Plan the pool: one worker per GPU (``trials_per_device`` per GPU), or CPU workers.

    With GPUs, worker ``i`` is pinned to ``gpus[i % len(gpus)]`` with
    ``CUDA_VISIBLE_DEVICES`` (so workers spread over the GPUs before doubling up).
    ``trials_per_device=None`` packs as many per GPU as ``n_workers`` needs,
    ``ceil(n_workers / len(gpus))``, so ``workers: 2`` on a one-GPU machine runs two trials
    on it; ``n_workers=None`` means ``len(gpus) * trials_per_device`` (one per GPU when
    both are None). Workers that share a GPU split :data:`SHARED_GPU_MEMORY` of its memory
    evenly (``memory_fraction``), so an out-of-memory error is the trial's own and
    ``fit_micro_batch`` fits the trial's share, whatever its neighbours do. Without GPUs,
    ``n_workers=None`` means one single-threaded worker per core: trials in parallel beat
    threads within one trial for the small models hyperparameter searches train. Either
    way the cores are split so that the workers do not oversubscribe them:
    ``threads = max(1, cpu_count // n_workers)`` unless ``threads_per_worker`` is given.

    Args:
        n_workers: Number of workers, or ``None`` for the default above.
        gpus: Ids of the GPUs to use, as ``CUDA_VISIBLE_DEVICES`` spells them; empty for CPU.
        cpu_count: Cores available to the driver.
        trials_per_device: Most workers per GPU, or ``None`` for as many as ``n_workers``
            needs.
        threads_per_worker: Torch threads per worker, or ``None`` to split the cores.
        hide_gpus: Set ``CUDA_VISIBLE_DEVICES=""`` in CPU workers (``devices="cpu"``).

    Example:
        >>> [s.env["CUDA_VISIBLE_DEVICES"] for s in plan_workers(None, ["0", "1"], cpu_count=8)]
        ['0', '1']
        >>> [s.memory_fraction for s in plan_workers(2, ["0"], cpu_count=8)]
        [0.45, 0.45]
    """
    check("trials_per_device", trials_per_device, optional(Int(low=1)), fix="or None to pack")
    check("cpu_count", cpu_count, Int(low=1))
    check("threads_per_worker", threads_per_worker, optional(Int(low=1)))
    if n_workers is None:
        per_gpu = trials_per_device or 1
        n_workers = len(gpus) * per_gpu if gpus else max(1, cpu_count // (threads_per_worker or 1))
    check("n_workers", n_workers, Int(low=1), fix="or None for one per GPU or core")
    if gpus and trials_per_device is not None and n_workers > len(gpus) * trials_per_device:
        raise ConfigError(
            f"n_workers={n_workers} exceeds {len(gpus)} GPU(s) x trials_per_device="
            f"{trials_per_device}; raise trials_per_device to {-(-n_workers // len(gpus))}, "
            "or leave it unset to pack as many trials per GPU as the workers need."
        )
    threads = threads_per_worker or max(1, cpu_count // n_workers)
    slots = []
    for index in range(n_workers):
        env = {var: str(threads) for var in THREAD_VARS}
        device = "cpu"
        if gpus:
            gpu = gpus[index % len(gpus)]
            env["CUDA_VISIBLE_DEVICES"] = gpu
            device = f"cuda:{gpu}"
        elif hide_gpus:
            env["CUDA_VISIBLE_DEVICES"] = ""
        slots.append(WorkerSlot(index=index, device=device, threads=threads, env=env))
    return _share_gpus(slots)


def _share_gpus(slots: list[WorkerSlot]) -> list[WorkerSlot]:
    """Give the workers of each shared GPU an even share of its memory."""
    sharing = collections.Counter(slot.device for slot in slots if slot.device != "cpu")
    return [
        dataclasses.replace(slot, memory_fraction=SHARED_GPU_MEMORY / sharing[slot.device])
        if sharing.get(slot.device, 1) > 1
        else slot
        for slot in slots
    ]


def visible_gpus() -> list[str]:
    """Ids of the GPUs this process may use, as ``CUDA_VISIBLE_DEVICES`` names them.

    ``torch.cuda.device_count()`` counts them without creating a CUDA context (it asks
    NVML or the driver; ``torch.cuda.is_initialized()`` stays false), and the workers are
    spawned, not forked, so no CUDA state of the driver reaches them. The count already
    honours ``CUDA_VISIBLE_DEVICES``; the ids come from that variable when it is set, so a
    driver limited to GPUs ``"2,3"`` pins its workers to ``2`` and ``3``.
    """
    import torch

    count = torch.cuda.device_count()
    if count == 0:
        return []
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is None:
        return [str(i) for i in range(count)]
    return [token.strip() for token in listed.split(",")][:count]


def available_cpus() -> int:
    """Cores this process may run on: its CPU affinity where the OS has one (containers and
    ``taskset`` restrict it), else ``os.cpu_count()``."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def gpu_ids(devices: str | Sequence[int | str]) -> list[str]:
    """The GPU ids an executor's ``devices`` argument stands for."""
    if devices == "auto":
        return visible_gpus()
    if devices == "cpu":
        return []
    if isinstance(devices, str) or not all(isinstance(d, (int, str)) for d in devices):
        raise ConfigError(
            f"devices must be 'auto', 'cpu' or a list of GPU ids like [0, 1], got {devices!r}."
        )
    return [str(d) for d in devices]


def check_timeout(name: str, value: float | None) -> None:
    check(name, value, optional(Number(low=0, low_open=True)), fix="seconds, or None for none")


def check_env(env: dict[str, str] | None) -> dict[str, str]:
    env = dict(env or {})
    bad = {k: v for k, v in env.items() if not (isinstance(k, str) and isinstance(v, str))}
    if bad:
        raise ConfigError(f"worker_env must map str to str; fix the entries {bad!r}.")
    return env
