"""Numeric dimensions: ``uniform``, ``loguniform`` and ``randint`` (inclusive bounds)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import optuna
from optuna.distributions import FloatDistribution, IntDistribution

from hptune.exceptions import ConfigError
from hptune.space._base import DEFAULT_GRID_POINTS, INT_GRID_CAP, Dimension, check_number


def _grid_settings(dim: FloatDimension | IntDimension, form: str) -> None:
    """Validate and freeze the ``grid=`` / ``n_grid=`` options of a numeric dimension."""
    if dim.grid is not None and dim.n_grid is not None:
        raise ConfigError(f"{form}: give grid=[...] or n_grid=..., not both.")
    if dim.n_grid is not None and (
        isinstance(dim.n_grid, bool) or not isinstance(dim.n_grid, int) or dim.n_grid < 1
    ):
        raise ConfigError(f"{form}: n_grid must be an int >= 1, got {dim.n_grid!r}.")
    if dim.grid is None:
        return
    if isinstance(dim.grid, (str, bytes)) or not isinstance(dim.grid, Sequence) or not dim.grid:
        raise ConfigError(f"{form}: grid must be a non-empty list of values, got {dim.grid!r}.")
    integral = isinstance(dim, IntDimension)
    values = tuple(check_number(v, form, "each grid value", integral) for v in dim.grid)
    outside = [v for v in values if not dim.low <= v <= dim.high]
    if outside:
        raise ConfigError(
            f"{form}: grid values {outside} lie outside [{dim.low!r}, {dim.high!r}]; "
            "widen the bounds or drop those values."
        )
    if len(set(values)) != len(values):
        raise ConfigError(f"{form}: grid values must be distinct, got {list(values)}.")
    object.__setattr__(dim, "grid", values)


def _options(dim: FloatDimension | IntDimension) -> str:
    parts = []
    if dim.grid is not None:
        parts.append(f", grid={list(dim.grid)!r}")
    if dim.n_grid is not None:
        parts.append(f", n_grid={dim.n_grid!r}")
    return "".join(parts)


def _spaced(low: float, high: float, n: int, log: bool) -> list[float]:
    """``n`` points from ``low`` to ``high`` (endpoints exact), evenly spaced in linear or
    log scale; a single point is the (geometric) middle."""
    if n == 1:
        return [math.sqrt(low * high) if log else (low + high) / 2]
    if log:
        a, b = math.log(low), math.log(high)
        inner = [math.exp(a + (b - a) * i / (n - 1)) for i in range(1, n - 1)]
    else:
        inner = [low + (high - low) * i / (n - 1) for i in range(1, n - 1)]
    return [low, *inner, high]


def _unique(values: list[Any]) -> list[Any]:
    """``values`` without repeats, first occurrences kept in order."""
    return list(dict.fromkeys(values))


@dataclass(frozen=True, repr=False)
class FloatDimension(Dimension):
    """A real number in ``[low, high]`` (both inclusive), sampled uniformly in linear scale
    or, with ``log=True``, in log scale. Build it with :func:`uniform` or :func:`loguniform`.

    Args:
        low: Lower bound (inclusive). Must be > 0 when ``log``.
        high: Upper bound (inclusive). ``low == high`` is allowed: a single value.
        log: Sample ``log(x)`` uniformly (learning rates, weight decay).
        grid: Explicit grid values, overriding the spaced points.
        n_grid: How many spaced points this dimension contributes to a grid.

    Example:
        >>> loguniform(1e-4, 1e-1).grid_values(4)
        [0.0001, 0.001, 0.01, 0.1]
    """

    low: float
    high: float
    log: bool = False
    grid: tuple[float, ...] | None = None
    n_grid: int | None = None

    @property
    def form(self) -> str:
        return "loguniform" if self.log else "uniform"

    def __post_init__(self) -> None:
        form = f"{self.form}({self.low!r}, {self.high!r})"
        object.__setattr__(self, "low", check_number(self.low, form, "low"))
        object.__setattr__(self, "high", check_number(self.high, form, "high"))
        if self.low > self.high:
            raise ConfigError(
                f"{form}: low must be <= high; write {self.form}({self.high!r}, {self.low!r})."
            )
        if not isinstance(self.log, bool):
            raise ConfigError(f"{form}: log must be true or false, got {self.log!r}.")
        if self.log and self.low <= 0:
            raise ConfigError(
                f"{form}: loguniform needs low > 0; use uniform(...) for ranges that include 0."
            )
        _grid_settings(self, form)

    def __repr__(self) -> str:
        return f"{self.form}({self.low!r}, {self.high!r}{_options(self)})"

    def distribution(self) -> FloatDistribution:
        return FloatDistribution(self.low, self.high, log=self.log)

    def suggest(self, trial: optuna.Trial, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high, log=self.log)

    def grid_values(self, n_points: int | None = None) -> list[float]:
        if self.grid is not None:
            return list(self.grid)
        if self.low == self.high:
            return [self.low]
        points = _spaced(
            self.low, self.high, self.n_grid or n_points or DEFAULT_GRID_POINTS, self.log
        )
        # 12 significant digits turn 0.0010000000000000002 into 0.001 for readable configs;
        # the clamp keeps a rounded endpoint inside the bounds Optuna checks.
        return _unique([min(max(float(f"{p:.12g}"), self.low), self.high) for p in points])

    def contains(self, value: Any) -> bool:
        return (
            isinstance(value, numbers.Real)
            and not isinstance(value, bool)
            and self.low <= value <= self.high
        )

    def canonical(self, value: Any) -> float:
        return float(value)

    def narrow(self, low: float, high: float) -> FloatDimension:
        """A copy restricted to ``[low, high]``, which must lie inside the current bounds.
        Explicit grid values outside the new range are dropped."""
        low, high = _check_narrow(self, low, high, integral=False)
        return replace(self, low=low, high=high, grid=_kept_grid(self, low, high))


@dataclass(frozen=True, repr=False)
class IntDimension(Dimension):
    """An integer in ``[low, high]`` -- BOTH bounds inclusive, unlike ``range``:
    ``randint(0, 5)`` yields 0, 1, 2, 3, 4 or 5. Build it with :func:`randint`.

    Args:
        low: Lower bound (inclusive).
        high: Upper bound (INCLUSIVE).
        log: Sample in log scale (needs ``low >= 1``).
        grid: Explicit grid values.
        n_grid: How many evenly spaced integers a grid visits. Without it, a range of at
            most ``max(INT_GRID_CAP, n_points)`` integers is gridded over every integer.

    Example:
        >>> randint(0, 5).grid_values()
        [0, 1, 2, 3, 4, 5]
    """

    low: int
    high: int
    log: bool = False
    grid: tuple[int, ...] | None = None
    n_grid: int | None = None

    form = "randint"

    def __post_init__(self) -> None:
        form = f"randint({self.low!r}, {self.high!r})"
        object.__setattr__(self, "low", check_number(self.low, form, "low", integral=True))
        object.__setattr__(self, "high", check_number(self.high, form, "high", integral=True))
        if self.low > self.high:
            raise ConfigError(
                f"{form}: low must be <= high (both inclusive); write randint({self.high}, {self.low})."
            )
        if not isinstance(self.log, bool):
            raise ConfigError(f"{form}: log must be true or false, got {self.log!r}.")
        if self.log and self.low < 1:
            raise ConfigError(f"{form}: randint(..., log=True) needs low >= 1.")
        _grid_settings(self, form)

    def __repr__(self) -> str:
        log = ", log=True" if self.log else ""
        return f"randint({self.low!r}, {self.high!r}{log}{_options(self)})"

    def distribution(self) -> IntDistribution:
        return IntDistribution(self.low, self.high, log=self.log)

    def suggest(self, trial: optuna.Trial, name: str) -> int:
        return trial.suggest_int(name, self.low, self.high, log=self.log)

    def grid_values(self, n_points: int | None = None) -> list[int]:
        if self.grid is not None:
            return list(self.grid)
        n = self.n_grid or n_points or DEFAULT_GRID_POINTS
        count = self.high - self.low + 1
        if count <= (n if self.n_grid else max(INT_GRID_CAP, n)):
            return list(range(self.low, self.high + 1))
        points = _spaced(float(self.low), float(self.high), n, self.log)
        return sorted(_unique([math.floor(p + 0.5) for p in points]))

    def contains(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return False
        return float(value).is_integer() and self.low <= value <= self.high

    def canonical(self, value: Any) -> int:
        return int(value)

    def narrow(self, low: float, high: float) -> IntDimension:
        """A copy restricted to ``[floor(low), ceil(high)]`` (rounded outward, so a range
        computed in floats never loses an integer), which must lie inside the bounds."""
        low, high = _check_narrow(self, low, high, integral=True)
        return replace(self, low=low, high=high, grid=_kept_grid(self, low, high))


def _check_narrow(dim: FloatDimension | IntDimension, low: Any, high: Any, integral: bool):
    form = f"narrow {dim!r} to ({low!r}, {high!r})"
    low, high = check_number(low, form, "low"), check_number(high, form, "high")
    if integral:
        low, high = math.floor(low), math.ceil(high)
    if low > high:
        raise ConfigError(f"{form}: low must be <= high.")
    if low < dim.low or high > dim.high:
        raise ConfigError(
            f"{form}: the range must lie inside the original bounds [{dim.low!r}, {dim.high!r}]."
        )
    return low, high


def _kept_grid(dim: FloatDimension | IntDimension, low: float, high: float) -> tuple | None:
    kept = tuple(v for v in dim.grid or () if low <= v <= high)
    return kept or None


def uniform(
    low: float, high: float, *, grid: Sequence[float] | None = None, n_grid: int | None = None
) -> FloatDimension:
    """A real number drawn uniformly from ``[low, high]``.

    Args:
        low: Lower bound (inclusive).
        high: Upper bound (inclusive).
        grid: Explicit values for grid search, instead of ``n_grid`` evenly spaced ones.
        n_grid: Grid points for this dimension (default: the grid's ``n_points``, else
            ``DEFAULT_GRID_POINTS`` = 5), spaced by ``linspace``.

    Example:
        >>> uniform(0.85, 0.95)
        uniform(0.85, 0.95)
    """
    return FloatDimension(low, high, log=False, grid=grid, n_grid=n_grid)


def loguniform(
    low: float, high: float, *, grid: Sequence[float] | None = None, n_grid: int | None = None
) -> FloatDimension:
    """A positive real drawn uniformly in log scale from ``[low, high]`` (``low > 0``):
    as many draws in [1e-4, 1e-3] as in [1e-2, 1e-1]. Grid points are geometric.

    Scale parameters such as the learning rate and weight decay matter by orders of
    magnitude, so they are searched in log scale (Bergstra & Bengio, "Random Search for
    Hyper-Parameter Optimization", JMLR 13, 2012).

    Args:
        low: Lower bound (inclusive), > 0.
        high: Upper bound (inclusive).
        grid: Explicit values for grid search.
        n_grid: Grid points for this dimension, spaced geometrically (default as
            :func:`uniform`).

    Example:
        >>> loguniform(1e-4, 1e-1)
        loguniform(0.0001, 0.1)
    """
    return FloatDimension(low, high, log=True, grid=grid, n_grid=n_grid)


def randint(
    low: int,
    high: int,
    *,
    log: bool = False,
    grid: Sequence[int] | None = None,
    n_grid: int | None = None,
) -> IntDimension:
    """An integer drawn uniformly from ``low`` to ``high``, BOTH INCLUSIVE
    (``randint(0, 5)`` may give 5, unlike ``random.randrange``/``numpy.random.randint``).

    Args:
        low: Lower bound (inclusive).
        high: Upper bound (inclusive).
        log: Draw in log scale (``low >= 1``), e.g. for widths 16..1024.
        grid: Explicit values for grid search.
        n_grid: Evenly spaced integers for grid search (default: every integer when the
            range holds at most ``INT_GRID_CAP`` = 10 of them, else the grid's ``n_points``).

    Example:
        >>> randint(0, 5)
        randint(0, 5)
    """
    return IntDimension(low, high, log=log, grid=grid, n_grid=n_grid)
