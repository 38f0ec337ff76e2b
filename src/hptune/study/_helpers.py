"""``grid_search`` and ``random_search``: the two helpers many tutorials write by hand,
with their usual call shape and result (``[{"params", "score"}]``, best first), run on the
engine: every trial is a recorded, seeded trial of a real study.

What they do that a hand-written loop usually does not:

* Trials are stored (default ``sqlite:///hptune.db`` in the working directory, like
  :func:`~hptune.study.create_study`; ``storage=None`` keeps them in memory) under ``name``
  (default ``"grid_search-<UTC time>-<random>"``), with their seeds and configs.
* ``random_search`` is seeded (``seed=None`` draws one and records it), takes hptune
  dimensions (``hptune.loguniform(1e-4, 1e-2)`` for a learning rate) and decides int vs
  float from *both* bounds, not the first one only.
* A trial whose ``train_fn`` raises is recorded as FAILED and left out of the results
  instead of ending the search.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable, Mapping
from typing import Any

from hptune.space import Dimension, randint, uniform
from hptune.study._study import DEFAULT_STORAGE, Study, _default_name, create_study


class _KeywordObjective:
    """``train_fn(**config)`` as an objective; a class, not a lambda, so that worker
    processes can receive it by pickling."""

    def __init__(self, train_fn: Callable[..., float]) -> None:
        self.train_fn = train_fn

    def __call__(self, config: dict[str, Any], trial: Any) -> float:
        return self.train_fn(**config)


def _results(study: Study) -> list[dict[str, Any]]:
    done = [t for t in study.trials if t.state == "COMPLETE"]
    done.sort(key=lambda t: t.value, reverse=study.direction == "maximize")
    return [{"params": t.config, "score": t.value, "trial": t.number, "seed": t.seed} for t in done]


def grid_search(
    param_grid: Mapping[str, Any],
    train_fn: Callable[..., float],
    *,
    storage: str | None = DEFAULT_STORAGE,
    name: str | None = None,
    direction: str = "maximize",
    n_workers: int = 1,
) -> list[dict[str, Any]]:
    """Run ``train_fn(**params)`` on every combination of ``param_grid`` exactly once.

    Args:
        param_grid: ``{name: [values]}``; any hptune space works (dimensions contribute
            their grid values, conditional choices their branches).
        train_fn: ``train_fn(**params) -> score``.
        storage: Where the study is stored (None: in memory).
        name: The study name.
        direction: ``"maximize"`` (default: the score is an accuracy) or ``"minimize"``.
        n_workers: Trials at once (worker processes when > 1; ``train_fn`` must then be
            importable by them).

    Returns:
        ``[{"params": ..., "score": ..., "trial": number, "seed": seed}]``, best first, for
        the trials that completed.

    Example:
        >>> results = grid_search({"lr": [0.1, 0.01], "bs": [32, 64]},
        ...                       lambda lr, bs: -abs(lr - 0.01) - bs / 1e4, storage=None)
        >>> results[0]["params"]
        {'lr': 0.01, 'bs': 32}
    """
    study = create_study(
        dict(param_grid),
        name=name or _default_name().replace("hptune", "grid_search", 1),
        storage=storage,
        direction=direction,
        strategy="grid",
        seed=0,
    )
    study.optimize(_KeywordObjective(train_fn), n_workers=n_workers)
    return _results(study)


def _range_dimension(key: str, value: Any) -> Any:
    """A ``(low, high)`` pair: ``randint`` when both bounds are ints, else ``uniform``."""
    if not (isinstance(value, (tuple, list)) and len(value) == 2):
        return value
    low, high = value
    if not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value):
        return value
    if all(isinstance(v, numbers.Integral) for v in value):
        return randint(int(low), int(high))
    if low > 0 and high / low >= 100:
        warnings.warn(
            f"{key}: uniform({low:g}, {high:g}) spans {high / low:.0f}x, so most draws land "
            f"near the top; for a scale parameter use hptune.loguniform({low:g}, {high:g}).",
            UserWarning,
            stacklevel=3,
        )
    return uniform(float(low), float(high))


def random_search(
    param_ranges: Mapping[str, Any],
    n_iter: int,
    train_fn: Callable[..., float],
    seed: int | None = None,
    *,
    storage: str | None = DEFAULT_STORAGE,
    name: str | None = None,
    direction: str = "maximize",
    n_workers: int = 1,
) -> list[dict[str, Any]]:
    """Run ``train_fn(**params)`` on ``n_iter`` random draws from ``param_ranges``.

    Args:
        param_ranges: ``{name: range}`` where a range is an hptune dimension
            (``loguniform(1e-4, 1e-2)``, ``choice(...)``), its string form, or a pair
            ``(low, high)`` / ``[low, high]``: both bounds ints means
            ``randint(low, high)`` (inclusive), otherwise ``uniform(low, high)``. A pair is a
            range here, never a choice of two values: write ``choice(a, b)`` for that.
        n_iter: Trials to run.
        train_fn: ``train_fn(**params) -> score``.
        seed: The study seed (None: drawn and recorded).
        storage, name, direction, n_workers: As for :func:`grid_search`.

    Returns:
        ``[{"params": ..., "score": ..., "trial": number, "seed": seed}]``, best first.

    Example:
        >>> from hptune.space import loguniform
        >>> results = random_search({"lr": loguniform(1e-4, 1e-2), "bs": (16, 256)}, 5,
        ...                         lambda lr, bs: -abs(lr - 1e-3), seed=0, storage=None)
        >>> len(results)
        5
    """
    space = {}
    for key, value in param_ranges.items():  # a loop, not a comprehension: warning stacklevel
        space[key] = value if isinstance(value, Dimension) else _range_dimension(key, value)
    study = create_study(
        space,
        name=name or _default_name().replace("hptune", "random_search", 1),
        storage=storage,
        direction=direction,
        strategy="random",
        seed=seed,
    )
    study.optimize(_KeywordObjective(train_fn), n_trials=n_iter, n_workers=n_workers)
    return _results(study)
