"""Deterministic parallel mode: the same configs for any number of workers and any timing.

With asynchronous workers the sampler sees whichever trials happen to have finished when it
is asked, so the sequence of configs depends on timing. ``optimize(deterministic=True)``
removes every timing-dependent input:

* **Sampler.** Trials are asked in fixed batches of ``batch_size`` (independent of the
  number of workers), all at once, before any of them runs. The driver waits for the whole
  batch and tells the outcomes in trial-number order before asking the next batch. So at
  every ask the storage holds the same finished trials (all previous batches) and the same
  RUNNING trials (the earlier members of this batch, which TPE's constant liar sees), for
  1 worker or 8. This is the synchronous batch scheme of batch Bayesian optimization
  (e.g. Ginsbourger et al. 2010, "Kriging is well-suited to parallelize optimization").
* **Pruner.** A pruner compares a trial's reports with other trials' reports. Reports of
  batch-mates arrive in a timing-dependent order, so :class:`BatchPruner` shows the pruner
  a view of the study holding only the trials of previous batches plus the trial being
  judged; its own reports arrive in a fixed order. A trial's pruning decision is then a
  pure function of the previous batches and its own curve. The first batch of a study is
  never pruned by a comparing pruner, as in a sequential run with ``n_startup_trials``.
* **Seeds.** Every trial's seed derives from the study seed and its number, as always.

The price: a worker idles while the slowest trial of its batch finishes.
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import FrozenTrial

from hptune.study._view import StudyView


class BatchPruner(optuna.pruners.BasePruner):
    """Wraps ``pruner`` so that it sees only trials numbered below ``cutoff`` (and the trial
    it judges). The driver moves ``cutoff`` to the first number of each batch.

    Args:
        pruner: The Optuna pruner that decides.

    Example:
        >>> pruner = BatchPruner(optuna.pruners.MedianPruner())
        >>> pruner.cutoff = 8  # trials 0..7 are the previous batches
    """

    def __init__(self, pruner: optuna.pruners.BasePruner) -> None:
        self.pruner = pruner
        self.cutoff = 0

    def prune(self, study: Any, trial: FrozenTrial) -> bool:
        cutoff, number = self.cutoff, trial.number

        def previous_batches(_: Any, trials: list[FrozenTrial]) -> list[FrozenTrial]:
            return [t for t in trials if t.number < cutoff or t.number == number]

        return self.pruner.prune(StudyView(study, previous_batches), trial)
