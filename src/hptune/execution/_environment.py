"""The environment a trial runs in, set by one piece of code for every executor and rerun.

A trial reruns bit for bit only when everything that changes its arithmetic is the same:
its config and seed, and the process state its objective meets. Two parts of that state
vary between an original run and a rerun unless something sets them:

* **Threads.** Torch's CPU kernels reduce in an order that depends on the number of
  intra-op threads; a worker of a 2-worker pool runs with 1, the ``hptune rerun`` command
  with every core, and a float sum differs in its last bits (enough to move a trial's
  validation accuracy from 0.675 to 0.647 after 20 epochs).
* **Global random number generators.** An objective that draws from ``random``,
  ``numpy.random`` or torch's default generator without seeding them from ``trial.seed``
  gets whatever state the process has reached.

:func:`apply_environment` sets both (and cuDNN's deterministic flags) before every
objective call, inside :func:`hptune.execution._run.run_job`, the one path every executor
and rerun take; what it set is returned as a :class:`Runtime` and recorded with the trial
(``hptune.runtime``), and a rerun applies the recorded values.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Any


@dataclasses.dataclass(frozen=True)
class Runtime:
    """What a trial's environment was set to.

    Args:
        threads: Torch intra-op threads the objective ran with.
        seed: The seed of Python's, NumPy's and torch's global generators (the trial's).
        deterministic: cuDNN deterministic kernels on, autotuning off.
    """

    threads: int
    seed: int
    deterministic: bool = True

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def apply_environment(seed: int, threads: int | None = None) -> Runtime:
    """Set the trial's environment: ``threads`` torch threads (None: keep the process's,
    which the executor chose), the global generators of ``random``, NumPy and torch seeded
    from ``seed``, and cuDNN's deterministic mode. Returns what was set."""
    import numpy as np
    import torch

    if threads is not None and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also every CUDA device's generator
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    return Runtime(threads=torch.get_num_threads(), seed=seed, deterministic=True)
