"""The base of every dimension, and the defaults grids use.

A dimension is a frozen value object that knows four things: the Optuna distribution it
maps to, how to ask an Optuna trial for a value, which values a grid visits, and whether a
value belongs to it. Its ``repr`` is its string form (``"loguniform(0.0001, 0.1)"``), which
:func:`hptune.space.parse_form` reads back to an equal object.
"""

from __future__ import annotations

import math
import numbers
from abc import ABC, abstractmethod
from typing import Any

import optuna
from optuna.distributions import BaseDistribution

from hptune.exceptions import ConfigError

#: Points a continuous dimension contributes to a grid unless told otherwise.
DEFAULT_GRID_POINTS = 5
#: A ``randint`` whose range holds at most this many integers is gridded over all of them.
INT_GRID_CAP = 10

#: The value types a choice may hold: exactly those Optuna's CategoricalDistribution accepts.
CHOICE_TYPES = (type(None), bool, int, float, str)


class Dimension(ABC):
    """One hyperparameter's set of values. Subclasses are frozen dataclasses."""

    @abstractmethod
    def distribution(self) -> BaseDistribution:
        """The Optuna distribution of this dimension."""

    @abstractmethod
    def suggest(self, trial: optuna.Trial, name: str) -> Any:
        """Ask ``trial`` for a value of the parameter ``name``."""

    @abstractmethod
    def grid_values(self, n_points: int | None = None) -> list[Any]:
        """The values a grid search visits, in order, each once."""

    @abstractmethod
    def contains(self, value: Any) -> bool:
        """Whether ``value`` is one of this dimension's values."""

    def canonical(self, value: Any) -> Any:
        """``value`` (already known to be contained) in the type this dimension samples."""
        return value


def check_number(value: Any, form: str, what: str, integral: bool = False) -> Any:
    """``value`` as a finite Python int/float, or a ConfigError that names the form."""
    kind = numbers.Integral if integral else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind):
        rule = "an int" if integral else "a number"
        fix = " (bounds are inclusive integers)" if integral else ""
        raise ConfigError(f"{form}: {what} must be {rule}, got {value!r}{fix}.")
    try:
        finite = math.isfinite(value)
    except OverflowError:  # an int beyond a float's range, which sampling and grids use
        finite = False
    if not finite:
        raise ConfigError(f"{form}: {what} must be finite, got {value!r}.")
    return int(value) if integral else float(value)
