"""The search space: a validated tree of dimensions, sub-spaces and constants."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from typing import Any

import optuna
from optuna.distributions import BaseDistribution

from hptune.exceptions import ConfigError
from hptune.space._base import Dimension
from hptune.space._categorical import Conditional
from hptune.space._grid import Grid
from hptune.space._numeric import FloatDimension, IntDimension
from hptune.space._parse import normalize

_NUMERIC = (FloatDimension, IntDimension)


class Space:
    """A declarative search space: a mapping of names to dimensions, sub-mappings and
    constants, validated on construction.

    Values in the mapping may be dimensions (``uniform(0, 1)``), their string forms
    (``"loguniform(1e-4, 1e-1)"``), lists (a choice over the list), a conditional choice
    (``choice({"adam": {...}})`` or the YAML form ``{"choice": {"adam": {...}}}``), nested
    mappings, or constants (None, bool, int, float, text that is not a form, tuples; the
    form ``{"constant": [...]}`` makes a constant list). Constants go straight into
    every config.

    Optuna parameter names are dotted paths: ``lr``, ``model.width``, ``optimizer`` (the
    branch name of a conditional) and ``optimizer.sgd.momentum`` (a branch's parameter).

    Args:
        mapping: The space, or another :class:`Space` to copy.

    Example:
        >>> space = Space({"lr": "loguniform(1e-4, 1e-1)", "optimizer": {"choice": {
        ...     "adam": {}, "sgd": {"momentum": [0.0, 0.9]}}}})
        >>> len(space.grid(n_points=2))
        6
        >>> space.flatten({"lr": 0.01, "optimizer": {"name": "sgd", "momentum": 0.9}})
        {'lr': 0.01, 'optimizer': 'sgd', 'optimizer.sgd.momentum': 0.9}
    """

    def __init__(self, mapping: Mapping[str, Any] | Space) -> None:
        if isinstance(mapping, Space):
            mapping = mapping._tree
        if not isinstance(mapping, Mapping):
            raise ConfigError(
                f"space: must be a mapping of parameter names to dimensions, got "
                f"{type(mapping).__name__} {mapping!r}; e.g. {{'lr': loguniform(1e-4, 1e-1)}}."
            )
        self._tree = normalize(mapping, "")

    # -- drawing configs -----------------------------------------------------------------

    def sample(self, trial: optuna.Trial) -> dict[str, Any]:
        """Draw a config from ``trial`` (a live Optuna trial), suggesting each active
        parameter under its dotted name; constants are copied, not suggested."""
        return _sample(self._tree, trial, "")

    def grid(self, n_points: int | None = None) -> list[dict[str, Any]]:
        """Every config of the grid: the exact cartesian product of each dimension's grid
        values, conditional branches expanded (the union over branches of each branch's
        sub-grid times the rest), each point once, in a deterministic order (the last key
        varies fastest). ``list(self.lazy_grid(n_points))``: for a large grid, use
        :meth:`lazy_grid` or :meth:`grid_point`, which build no list.

        Args:
            n_points: Points per continuous dimension and per large ``randint`` that sets
                no ``grid``/``n_grid`` of its own (default 5).
        """
        return list(self.lazy_grid(n_points))

    def grid_size(self, n_points: int | None = None) -> int:
        """``len(self.grid(n_points))``, exact, computed without building the grid: a
        product over the keys, a sum over a conditional's branches."""
        return self.lazy_grid(n_points).size

    def grid_point(self, index: int, n_points: int | None = None) -> dict[str, Any]:
        """``self.grid(n_points)[index]``, decoded without building the grid.

        Example:
            >>> Space({"a": [1, 2, 3], "b": ["x", "y"]}).grid_point(3)
            {'a': 2, 'b': 'y'}
        """
        return self.lazy_grid(n_points)[index]

    def lazy_grid(self, n_points: int | None = None) -> Grid:
        """The grid as a :class:`~hptune.space.Grid`: its exact ``size`` and ``grid[i]``
        decoded on demand (by mixed-radix decoding over the keys, a conditional first
        picking its branch), in the order of :meth:`grid`."""
        _check_n_points(n_points)
        return Grid(self._tree, n_points)

    # -- configs back to parameters ------------------------------------------------------

    def flatten(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """The Optuna parameters that make :meth:`sample` return ``config``:
        ``optuna_study.enqueue_trial(space.flatten(config))`` re-creates it.

        Raises:
            ConfigError: ``config`` does not belong to this space (missing or extra key,
                value outside its dimension, unknown branch, different constant).
        """
        params: dict[str, Any] = {}
        _flatten(self._tree, config, "", params)
        return params

    def distributions(self, config: Mapping[str, Any] | None = None) -> dict[str, BaseDistribution]:
        """The Optuna distribution of each parameter by name: of every parameter, or only
        of those active in ``config`` (the branches it chose)."""
        if config is None:
            return {name: dim.distribution() for name, dim in self.dimensions()}
        names = self.flatten(config)
        return {name: dim.distribution() for name, dim in self.dimensions() if name in names}

    def dimensions(self) -> Iterator[tuple[str, Dimension]]:
        """``(parameter name, dimension)`` for every parameter, branches included, in
        order; a conditional comes before its branches' parameters."""
        yield from _dimensions(self._tree, "")

    # -- coarse-to-fine --------------------------------------------------------------------

    def narrow(self, ranges: Mapping[str, tuple[float, float]]) -> Space:
        """A copy whose numeric parameters named in ``ranges`` are restricted to
        ``(low, high)``, which must lie inside their current bounds. Log dimensions stay
        log, integer ones stay integer (float bounds are rounded outward).

        Example:
            >>> Space({"lr": "loguniform(1e-5, 1.0)"}).narrow({"lr": (1e-3, 1e-2)}).to_dict()
            {'lr': 'loguniform(0.001, 0.01)'}
        """
        numeric = {name: d for name, d in self.dimensions() if isinstance(d, _NUMERIC)}
        unknown = sorted(set(ranges) - set(numeric))
        if unknown:
            raise ConfigError(
                f"narrow: {unknown} are not numeric parameters of this space; "
                f"the numeric parameters are {sorted(numeric)}."
            )
        narrowed = {name: numeric[name].narrow(*ranges[name]) for name in ranges}
        space = Space.__new__(Space)
        space._tree = _replace(self._tree, "", narrowed)
        return space

    # -- records ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description (string forms, ``{"choice": {...}}`` for conditionals,
        ``{"constant": [...]}`` for tuples) that :meth:`from_dict` reads back."""
        return _encode_tree(self._tree)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Space:
        """The space :meth:`to_dict` described."""
        return cls(data)

    def fingerprint(self) -> str:
        """sha256 hex digest of the canonical JSON of :meth:`to_dict`. Key order is kept,
        not sorted: it fixes the order of suggestions and of grid points, so two spaces
        that differ only in order do not reproduce each other's seeded runs."""
        text = json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=True, allow_nan=False)
        return hashlib.sha256(text.encode()).hexdigest()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Space):
            return NotImplemented
        return _ordered(self._tree) == _ordered(other._tree)

    # Equality is structural (like dict's), so a Space is not hashable, as a dict is not.
    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Space({self.to_dict()!r})"


def _check_n_points(n_points: int | None) -> None:
    if n_points is not None and (
        isinstance(n_points, bool) or not isinstance(n_points, int) or n_points < 1
    ):
        raise ConfigError(f"grid: n_points must be an int >= 1 or None, got {n_points!r}.")


def _sample(tree: dict[str, Any], trial: optuna.Trial, prefix: str) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for key, node in tree.items():
        name = prefix + key
        if isinstance(node, Conditional):
            branch = node.suggest(trial, name)
            config[key] = {
                "name": branch,
                **_sample(node.branches[branch], trial, f"{name}.{branch}."),
            }
        elif isinstance(node, Dimension):
            config[key] = node.suggest(trial, name)
        elif isinstance(node, dict):
            config[key] = _sample(node, trial, name + ".")
        else:
            config[key] = node
    return config


def _mismatch(name: str, why: str) -> ConfigError:
    return ConfigError(f"config does not belong to the space: {name}: {why}")


def _flatten(tree: dict[str, Any], config: Any, prefix: str, params: dict[str, Any]) -> None:
    where = prefix[:-1] or "config"
    if not isinstance(config, Mapping):
        raise _mismatch(where, f"expected a mapping, got {config!r}.")
    extra = [key for key in config if key not in tree]
    if extra:
        raise _mismatch(where, f"unexpected keys {extra}; the space has {list(tree)}.")
    for key, node in tree.items():
        name = prefix + key
        if key not in config:
            raise _mismatch(name, "missing from the config.")
        _flatten_node(node, config[key], name, params)


def _flatten_node(node: Any, value: Any, name: str, params: dict[str, Any]) -> None:
    if isinstance(node, Conditional):
        branch = value.get("name") if isinstance(value, Mapping) else None
        if not node.contains(branch):
            raise _mismatch(
                name, f"expected {{'name': <one of {list(node.names)}>, ...}}, got {value!r}."
            )
        params[name] = branch
        rest = {k: v for k, v in value.items() if k != "name"}
        _flatten(node.branches[branch], rest, f"{name}.{branch}.", params)
    elif isinstance(node, Dimension):
        if not node.contains(value):
            raise _mismatch(name, f"{value!r} is not in {node!r}.")
        params[name] = node.canonical(value)
    elif isinstance(node, dict):
        _flatten(node, value, name + ".", params)
    elif not _same_constant(node, value):
        raise _mismatch(name, f"the space fixes it to {node!r}, got {value!r}.")


def _same_constant(constant: Any, value: Any) -> bool:
    if isinstance(constant, tuple):
        return (
            isinstance(value, (tuple, list))
            and len(value) == len(constant)
            and all(_same_constant(c, v) for c, v in zip(constant, value))
        )
    if type(constant) is type(value):
        return constant == value
    # JSON writes 0.0 as 0 in some encoders; an int equal to a float constant still matches.
    return isinstance(constant, float) and type(value) is int and constant == value


def _dimensions(tree: dict[str, Any], prefix: str) -> Iterator[tuple[str, Dimension]]:
    for key, node in tree.items():
        name = prefix + key
        if isinstance(node, Dimension):
            yield name, node
        if isinstance(node, Conditional):
            for branch, sub in node.branches.items():
                yield from _dimensions(sub, f"{name}.{branch}.")
        elif isinstance(node, dict):
            yield from _dimensions(node, name + ".")


def _replace(tree: dict[str, Any], prefix: str, new: Mapping[str, Dimension]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, node in tree.items():
        name = prefix + key
        if isinstance(node, Conditional):
            out[key] = Conditional(
                {b: _replace(sub, f"{name}.{b}.", new) for b, sub in node.branches.items()}
            )
        elif isinstance(node, dict):
            out[key] = _replace(node, name + ".", new)
        else:
            out[key] = new.get(name, node)
    return out


def _encode(node: Any) -> Any:
    if isinstance(node, Conditional):
        return {"choice": {b: _encode_tree(sub) for b, sub in node.branches.items()}}
    if isinstance(node, Dimension):
        return repr(node)
    if isinstance(node, dict):
        return _encode_tree(node)
    if isinstance(node, tuple):
        return {"constant": _plain(node)}
    return node


def _encode_tree(tree: dict[str, Any]) -> dict[str, Any]:
    return {key: _encode(node) for key, node in tree.items()}


def _plain(value: Any) -> Any:
    return [_plain(v) for v in value] if isinstance(value, tuple) else value


def _ordered(node: Any) -> Any:
    """A comparison key that, unlike dict equality, sees key order (it fixes sampling and
    grid order) and the type of constants (1 vs 1.0 vs True)."""
    if isinstance(node, Conditional):
        return ("choice", [(b, _ordered(sub)) for b, sub in node.branches.items()])
    if isinstance(node, dict):
        return ("map", [(k, _ordered(v)) for k, v in node.items()])
    if isinstance(node, Dimension):
        return ("dim", repr(node))
    return ("const", type(node).__name__, repr(node))
