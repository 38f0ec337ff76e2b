"""Categorical dimensions: ``choice`` over values, and conditional ``choice`` of sub-spaces."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.distributions import CategoricalDistribution

from hptune.exceptions import ConfigError
from hptune.space._base import CHOICE_TYPES, Dimension


def _same_choice(a: Any, b: Any) -> bool:
    """Equality for choice values that keeps True apart from 1 and "1" apart from 1, while
    1 == 1.0 (JSON round trips may turn one into the other)."""
    if isinstance(a, (bool, str)) or isinstance(b, (bool, str)) or a is None or b is None:
        return type(a) is type(b) and a == b
    return a == b


def _choice_value(value: Any) -> Any:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = int(value)  # numpy ints become plain ints, which Optuna stores
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, CHOICE_TYPES):
        raise ConfigError(
            f"choice: values must be None, bool, int, float or str, got {value!r} "
            f"({type(value).__name__}); for sub-spaces write choice({{'name': {{...}}}})."
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"choice: values must be finite, got {value!r}.")
    return value


@dataclass(frozen=True, repr=False)
class Choice(Dimension):
    """One of a fixed list of values (None, bool, int, float or str; types may mix).
    Build it with :func:`choice`.

    Args:
        values: The values, in order; distinct under ``==`` (Optuna cannot tell ``True``
            from ``1`` nor ``1`` from ``1.0`` in a categorical, so those pairs are refused).

    Example:
        >>> choice(32, 64, 128).grid_values()
        [32, 64, 128]
    """

    values: tuple[Any, ...]

    def __post_init__(self) -> None:
        values = tuple(_choice_value(v) for v in self.values)
        form = f"choice({', '.join(map(repr, values))})"
        if not values:
            raise ConfigError("choice(): needs at least one value, e.g. choice(32, 64).")
        for i, a in enumerate(values):
            twin = next((b for b in values[i + 1 :] if a == b), _MISSING)
            if twin is not _MISSING:
                raise ConfigError(
                    f"{form}: values must be distinct, but {a!r} == {twin!r} "
                    "(Optuna treats True as 1 and 1.0 as 1); remove one."
                )
        object.__setattr__(self, "values", values)

    def __repr__(self) -> str:
        return f"choice({', '.join(map(repr, self.values))})"

    def distribution(self) -> CategoricalDistribution:
        return CategoricalDistribution(self.values)

    def suggest(self, trial: optuna.Trial, name: str) -> Any:
        return trial.suggest_categorical(name, self.values)

    def grid_values(self, n_points: int | None = None) -> list[Any]:
        return list(self.values)

    def contains(self, value: Any) -> bool:
        return any(_same_choice(value, v) for v in self.values)

    def canonical(self, value: Any) -> Any:
        return next(v for v in self.values if _same_choice(value, v))


_MISSING = object()


@dataclass(frozen=True, repr=False)
class Conditional(Dimension):
    """A choice between named sub-spaces: ``choice({"adam": {...}, "sgd": {...}})``.

    The chosen branch appears in a config as ``{"name": "sgd", **sampled_sub_space}``; an
    empty branch ``{}`` gives ``{"name": "cosine"}``. Its own Optuna parameter is a
    categorical over the branch names; a branch's parameters are named
    ``<path>.<branch>.<key>`` and drawn only when that branch is chosen.

    Args:
        branches: Branch name -> sub-space mapping. Names are non-empty strings without
            ``.``; a branch may not use the key ``"name"`` (the config uses it).

    Example:
        >>> choice({"cosine": {}, "plateau": {"factor": choice(0.1, 0.5)}}).names
        ('cosine', 'plateau')
    """

    branches: Mapping[str, Any]

    def __post_init__(self) -> None:
        if not isinstance(self.branches, Mapping) or not self.branches:
            raise ConfigError(
                "choice({...}): a conditional choice needs at least one branch, "
                "e.g. choice({'cosine': {}, 'step': {'gamma': uniform(0.1, 0.9)}})."
            )
        for name, branch in self.branches.items():
            if not isinstance(name, str) or not name or "." in name:
                raise ConfigError(
                    f"choice({{...}}): branch names must be non-empty strings without '.', "
                    f"got {name!r}; name the branch like 'sgd'."
                )
            if not isinstance(branch, Mapping):
                raise ConfigError(
                    f"choice({{...}}): branch {name!r} must be a mapping of its parameters "
                    f"(use {{}} for none), got {branch!r}."
                )
            if "name" in branch:
                raise ConfigError(
                    f"choice({{...}}): branch {name!r} uses the key 'name', which the config "
                    "reserves for the branch name; rename that parameter."
                )
        object.__setattr__(self, "branches", {k: dict(v) for k, v in self.branches.items()})

    @property
    def names(self) -> tuple[str, ...]:
        """The branch names, in order."""
        return tuple(self.branches)

    def __repr__(self) -> str:
        return f"choice({self.branches!r})"

    def distribution(self) -> CategoricalDistribution:
        return CategoricalDistribution(self.names)

    def suggest(self, trial: optuna.Trial, name: str) -> str:
        return trial.suggest_categorical(name, self.names)

    def grid_values(self, n_points: int | None = None) -> list[str]:
        return list(self.names)

    def contains(self, value: Any) -> bool:
        return isinstance(value, str) and value in self.branches


def choice(*values: Any) -> Choice | Conditional:
    """One of ``values``; or, given a single mapping, a conditional choice of sub-spaces.

    ``choice(32, 64, 128)`` and ``choice([32, 64, 128])`` are the same dimension.
    ``choice({"adam": {"beta1": uniform(0.85, 0.95)}, "sgd": {}})`` is conditional.

    Example:
        >>> choice(True, False)
        choice(True, False)
    """
    if len(values) == 1 and isinstance(values[0], Mapping):
        return Conditional(values[0])
    if len(values) == 1 and isinstance(values[0], (list, tuple)):
        values = tuple(values[0])
    if any(isinstance(v, Mapping) for v in values):
        raise ConfigError(
            "choice(...): a mapping of sub-spaces must be the only argument, "
            "e.g. choice({'adam': {...}, 'sgd': {...}})."
        )
    return Choice(tuple(values))
