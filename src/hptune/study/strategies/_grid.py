"""Grid search: every point of the space's grid exactly once, shared by every driver."""

from __future__ import annotations

import random
from collections.abc import Set
from typing import TYPE_CHECKING

import optuna
from optuna.samplers import BaseSampler
from optuna.trial import TrialState

from hptune._checks import Bool, Int, optional
from hptune.study import _budget, _records
from hptune.study.strategies._base import Strategy

if TYPE_CHECKING:
    from hptune.space import Space

#: Study user attribute recording how many grid points were enqueued.
GRID_ATTR = "hptune.grid"


class GridStrategy(Strategy):
    """Every point of ``space.grid(n_points)`` exactly once, in an order shuffled by the
    study seed.

    The points are enqueued as Optuna WAITING trials when the study is created, and the
    study stops when no point waits. Re-opening the study enqueues again every point that no
    trial holds (none counts, runs or waits for it: its trial was interrupted, or reaped as
    stale), so a resumed grid is complete. With several drivers on one shared study, the
    points are shared out among them; should two drivers both re-enqueue a point, the
    driver that pops the later copy drops it (see ``hptune.study._budget``).
    The shuffle matters when the budget is smaller than the grid: in the space's own order
    the first trials would all sit in one corner (the smallest lr, say); shuffled, any
    prefix of the grid spreads over the whole space, as Optuna's GridSampler does.

    Args:
        n_points: Points per continuous dimension that sets no grid of its own (see
            :meth:`hptune.space.Space.grid`).
        shuffle: Visit the points in an order shuffled by the study seed (default True);
            False keeps the order of :meth:`hptune.space.Space.grid`.
    """

    name = "grid"
    option_rules = {"n_points": optional(Int(low=1)), "shuffle": Bool()}
    queue_only = True

    def create_sampler(self, seed: int, n_existing_trials: int) -> BaseSampler:
        # Every parameter of a grid point is fixed; the sampler is never consulted for them.
        return optuna.samplers.RandomSampler(
            seed=_records.derive_sampler_seed(seed, n_existing_trials)
        )

    def prepare(self, study: optuna.Study, space: Space, seed: int) -> None:
        points = space.grid(self.option("n_points", None))
        if self.option("shuffle", True):
            random.Random(seed).shuffle(points)
        held = {_budget.grid_point(t) for t in study.get_trials(deepcopy=False) if _budget.holds(t)}
        n_new = 0
        for config in points:
            params = space.flatten(config)
            if _records.canonical_json(params) not in held:
                study.enqueue_trial(params)
                n_new += 1
        if n_new or GRID_ATTR not in study.user_attrs:
            study.set_user_attr(GRID_ATTR, {"size": len(points), "enqueued": n_new})

    def next_stage(self, study: optuna.Study, running: Set[int]) -> str | None:
        waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
        return self.name if waiting else None
