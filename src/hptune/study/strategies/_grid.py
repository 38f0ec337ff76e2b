"""Grid search: every point of the space's grid exactly once, shared by every driver.

The grid is never listed. Its points are visited in a seeded order, position ``p`` being
grid index ``perm[p]`` of a :class:`~hptune.space.FeistelPermutation` keyed by the study
seed (the reasons for that shuffle are in its module), each decoded when it is needed
(:meth:`~hptune.space.Space.lazy_grid`). Only a window of the order waits in storage as
Optuna WAITING trials: ``n_queued`` points are enqueued when the study is created, and
:meth:`GridStrategy.next_stage` (before each ask) tops the queue up again once half of it
has been taken. The study user attribute :data:`GRID_ATTR` records the next position of the
order to enqueue, so a grid of 10^12 points starts at once and stores about ``n_queued``
trials ahead of its workers.

Several drivers share one study and its queue. Two that top it up at the same moment may
enqueue the same positions; the copies are harmless: the driver that pops a later copy
drops it as a ``duplicate`` (not counted; see :func:`hptune.study._budget.pop_waiting`),
and a top-up skips points that a trial already holds. The recorded position only ever
moves forward (each driver writes the larger of its own and the stored one), and it is
written after the points before it were enqueued, so no point is skipped. A driver whose
pop finds the queue empty (other drivers took it) asks :meth:`GridStrategy.refill` before it
stops.
"""

from __future__ import annotations

from collections.abc import Set
from typing import TYPE_CHECKING, Any

import optuna
from optuna.samplers import BaseSampler
from optuna.trial import TrialState

from hptune._checks import Bool, Int, optional
from hptune.space import FeistelPermutation
from hptune.study import _budget, _records
from hptune.study.strategies._base import Strategy

if TYPE_CHECKING:
    from hptune.space import Grid, Space

#: Study user attribute: ``{"size", "n_points", "shuffle", "next"}``, the grid and the next
#: position of its order to enqueue. Studies written before grids were lazy hold
#: ``{"size", "enqueued"}``: they enqueued every point when they were created.
GRID_ATTR = "hptune.grid"

#: Points kept queued ahead of the workers, unless the ``n_queued`` option says otherwise.
DEFAULT_QUEUED = 64


class GridStrategy(Strategy):
    """Every point of ``space.grid(n_points)`` exactly once, in an order shuffled by the
    study seed, enqueued a window at a time.

    The study stops when no point is left to enqueue and none waits. Re-opening the study
    enqueues again every point that was enqueued but that no trial holds any more (none
    counts, runs or waits for it: its trial was interrupted, or reaped as stale), so a
    resumed grid is complete; those points are read from the trials, not from the grid.
    The shuffle matters when the budget is smaller than the grid: in the space's own order
    the first trials would all sit in one corner (the smallest lr, say); shuffled, any
    prefix of the order spreads over the whole space, as Optuna's GridSampler does.

    Re-opening a grid with another ``n_points`` or ``shuffle`` starts the new grid's order
    from its beginning, skipping the points that trials already hold.

    Args:
        n_points: Points per continuous dimension that sets no grid of its own (see
            :meth:`hptune.space.Space.grid`).
        shuffle: Visit the points in an order shuffled by the study seed (default True);
            False keeps the order of :meth:`hptune.space.Space.grid`.
        n_queued: Points kept waiting in storage ahead of the workers (default 64); the
            queue is topped up when half of it was taken. Keep it above the number of
            workers of all drivers together.

    Example:
        >>> from hptune.study import create_study
        >>> study = create_study({"a": [1, 2, 3], "b": [10, 20]}, storage=None,
        ...                      direction="maximize", strategy="grid", seed=0)
        >>> study.optimize(lambda config, trial: config["a"] * config["b"])
        <StopReason.EXHAUSTED: 'exhausted'>
        >>> sorted(t.value for t in study.trials)
        [10.0, 20.0, 20.0, 30.0, 40.0, 60.0]
    """

    name = "grid"
    option_rules = {
        "n_points": optional(Int(low=1)),
        "shuffle": Bool(),
        "n_queued": Int(low=1),
    }
    queue_only = True

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._space: Space | None = None
        self._order: _Order | None = None
        self._key: dict[str, Any] = {}  # the grid, as GRID_ATTR records it

    def create_sampler(self, seed: int, n_existing_trials: int) -> BaseSampler:
        # Every parameter of a grid point is fixed; the sampler is never consulted for them.
        return optuna.samplers.RandomSampler(
            seed=_records.derive_sampler_seed(seed, n_existing_trials)
        )

    def prepare(self, study: optuna.Study, space: Space, seed: int) -> None:
        shuffle = self.option("shuffle", True)
        grid = space.lazy_grid(self.option("n_points", None))
        self._space, self._order = space, _Order(grid, seed if shuffle else None)
        key = {"size": grid.size, "n_points": self.option("n_points", None), "shuffle": shuffle}
        self._key = key
        stored = study.user_attrs.get(GRID_ATTR)
        start = _resume_position(stored, key)
        if start is None:  # a new grid, or another one than the stored one: from the start
            study.set_user_attr(GRID_ATTR, {**key, "next": 0})
        else:
            for params in _budget.lost_points(study):
                study.enqueue_trial(params)
            if stored != {**key, "next": start}:
                _advance(study, key, start)
        self._top_up(study, _n_waiting(study))

    def next_stage(self, study: optuna.Study, running: Set[int]) -> str | None:
        n_waiting = _n_waiting(study)
        if n_waiting <= self._n_queued // 2:
            n_waiting += self._top_up(study, n_waiting)
        return self.name if n_waiting else None

    def refill(self, study: optuna.Study) -> bool:
        n_waiting = _n_waiting(study)
        return self._top_up(study, n_waiting) > 0 or n_waiting > 0

    @property
    def _n_queued(self) -> int:
        return self.option("n_queued", DEFAULT_QUEUED)

    def _top_up(self, study: optuna.Study, n_waiting: int) -> int:
        """Enqueue the next points of the order, skipping points a trial holds, until
        ``n_queued`` wait or the order ends; the number enqueued."""
        assert self._space is not None and self._order is not None, "prepare() comes first"
        # Another grid recorded meanwhile (a driver re-opened it with other options): walk
        # this one from its start; the points held already are skipped.
        position = _resume_position(study.user_attrs.get(GRID_ATTR), self._key) or 0
        size = self._order.size
        if position >= size or n_waiting >= self._n_queued:
            return 0
        held = _budget.held_points(study)
        n_new = 0
        while position < size and n_waiting + n_new < self._n_queued:
            params = self._space.flatten(self._order[position])
            position += 1
            if _records.canonical_json(params) not in held:
                study.enqueue_trial(params)
                n_new += 1
        _advance(study, self._key, position)
        return n_new


class _Order:
    """The grid's points in the order they are visited: shuffled by ``seed``, or not."""

    def __init__(self, grid: Grid, seed: int | None) -> None:
        self.grid, self.size = grid, grid.size
        self.permutation = None if seed is None else FeistelPermutation(grid.size, seed)

    def __getitem__(self, position: int) -> dict[str, Any]:
        index = position if self.permutation is None else self.permutation[position]
        return self.grid[index]


def _n_waiting(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))


def _resume_position(stored: dict[str, Any] | None, key: dict[str, Any]) -> int | None:
    """The stored next position when ``stored`` records this grid; None to start afresh."""
    if stored is None:
        return None
    if "next" not in stored:  # written before grids were lazy: every point was enqueued
        return stored["size"] if stored["size"] == key["size"] else None
    same = all(stored.get(k) == v for k, v in key.items())
    return stored["next"] if same else None


def _advance(study: optuna.Study, key: dict[str, Any], position: int) -> None:
    """Record ``position`` as the next to enqueue, unless another driver recorded a later
    one of the same grid meanwhile (the position never moves back)."""
    stored = study.user_attrs.get(GRID_ATTR) or {}
    if all(stored.get(k) == v for k, v in key.items()) and "next" in stored:
        position = max(position, stored["next"])
    study.set_user_attr(GRID_ATTR, {**key, "next": position})
