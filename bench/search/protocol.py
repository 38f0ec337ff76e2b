"""The contract every search-efficiency method and evaluator follows.

A *method* (hptune's default, each hptune strategy, Optuna TPE, Ray Tune ASHA, Hyperopt,
DEHB, the seed's random and grid search, ...) searches the space its evaluator carries
(``evaluator.space``: the common space of ``bench/search/space.py`` for the replay and live
tasks, LCBench's own for LCBench) under a budget counted in **training epochs**. It never trains anything itself: it hands configs to
an :class:`Evaluator`, which trains them for real (live mode) or reads their learning curve
from a cached table (replay mode). Every epoch an evaluator runs goes through the
:class:`Ledger`, which counts epochs spent, keeps the anytime curve (best validation
accuracy seen against epochs spent) and stops the method when the budget is spent.

    def method(evaluator: Evaluator, ledger: Ledger, seed: int) -> dict:   # the chosen config
        ...
        value = evaluator.run(config, trial_seed, report)   # report(epoch, val) -> stop?
        ...

``report`` is the method's own callback (e.g. an Optuna pruner's decision), which the
method must pass through ``ledger.wrap(report)`` so every epoch is counted; the ledger
raises :class:`BudgetExhausted` once the budget is spent, and the method returns its best
config so far.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from hptune.space import Space

#: ``report(epoch, val_accuracy) -> stop``: epochs are 1-based.
Report = Callable[[int, float], bool]


class BudgetExhausted(BaseException):
    """Raised by the ledger when the epoch budget is spent; methods catch it and stop.

    A BaseException, like KeyboardInterrupt, so it passes through hptune's and Optuna's
    per-trial error handling (which records an ordinary Exception as a failed trial and
    goes on) and ends the whole search."""


class Evaluator(Protocol):
    """Trains (live), replays (cached curves) or predicts (a surrogate) one config, epoch by
    epoch. ``space`` is the hptune space its configs come from: every method searches it,
    translated to the method's own format where the method is not hptune's."""

    task: str
    max_epochs: int
    space: Space

    def run(self, config: dict[str, Any], seed: int, report: Report) -> float:
        """Run ``config`` up to ``max_epochs``, calling ``report(epoch, val_accuracy)`` after
        each epoch and stopping when it returns True; return the best val accuracy seen."""
        ...

    def test_accuracy(self, config: dict[str, Any], seed: int) -> float:
        """Test accuracy of ``config`` trained the full ``max_epochs`` (best-val epoch)."""
        ...


@dataclasses.dataclass
class Ledger:
    """Counts epochs against ``budget_epochs`` and records the anytime curve."""

    budget_epochs: int
    spent: int = 0
    best: float = float("-inf")
    best_config: dict[str, Any] | None = None
    #: (epochs spent, best val accuracy so far) after every epoch
    curve: list[tuple[int, float]] = dataclasses.field(default_factory=list)

    def wrap(self, report: Report | None, config: dict[str, Any]) -> Report:
        """A report that counts each epoch, then asks ``report`` (None: never stop)."""

        def counted(epoch: int, value: float) -> bool:
            if self.spent >= self.budget_epochs:
                raise BudgetExhausted
            self.spent += 1
            if value > self.best:
                self.best, self.best_config = value, config
            self.curve.append((self.spent, self.best))
            return bool(report(epoch, value)) if report is not None else False

        return counted
