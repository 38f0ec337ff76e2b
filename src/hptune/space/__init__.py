"""Declarative search spaces: dimensions, conditional sub-spaces, sampling from an Optuna
trial, grids (listed, or decoded point by point from an index), a seeded shuffle of a grid's
order that needs no list, and a JSON record of the space.

Example:
    >>> from hptune.space import Space, choice, loguniform, randint, uniform
    >>> space = Space({
    ...     "lr": loguniform(1e-4, 1e-1),
    ...     "warmup_epochs": randint(0, 5),  # both bounds inclusive
    ...     "optimizer": choice({"adam": {"beta1": uniform(0.85, 0.95)}, "sgd": {}}),
    ... })
    >>> space.grid_size(n_points=3)
    72
"""

from __future__ import annotations

from hptune.space._base import DEFAULT_GRID_POINTS, INT_GRID_CAP, Dimension
from hptune.space._categorical import Choice, Conditional, choice
from hptune.space._diff import space_changes
from hptune.space._grid import Grid
from hptune.space._numeric import FloatDimension, IntDimension, loguniform, randint, uniform
from hptune.space._parse import parse_form
from hptune.space._shuffle import FeistelPermutation
from hptune.space._space import Space

__all__ = [
    "DEFAULT_GRID_POINTS",
    "INT_GRID_CAP",
    "Choice",
    "Conditional",
    "Dimension",
    "FeistelPermutation",
    "FloatDimension",
    "Grid",
    "IntDimension",
    "Space",
    "choice",
    "loguniform",
    "parse_form",
    "randint",
    "space_changes",
    "uniform",
]
