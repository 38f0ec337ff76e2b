"""A space's grid, decoded point by point from its index: no list of every point.

A grid is a product of axes, one per key of the space (the last key varies fastest, as in
``itertools.product``). An axis is a dimension's grid values, a constant (one value), a
nested mapping (a product of its own), or a conditional choice, which is a *union*: its
branches' sub-grids one after another, in branch order. So the grid's size is a product
of sums, computed from each dimension's value count, and the ``i``-th point is found by
mixed-radix decoding: ``i`` splits into one digit per axis, the last axis taking
``i mod size(last)``; a union's digit picks the branch whose range of indices holds it and
decodes the rest inside that branch. Both cost time in the number of axes, not points, so
a grid of 10^12 points can be walked in any order without building it.

Example:
    >>> from hptune.space import Space, choice
    >>> grid = Space({"lr": [0.1, 0.01], "opt": choice({"adam": {}, "sgd": {"m": [0, 0.9]}})}
    ...              ).lazy_grid()
    >>> grid.size, grid[4]
    (6, {'lr': 0.01, 'opt': {'name': 'sgd', 'm': 0}})
"""

from __future__ import annotations

import bisect
import itertools
import numbers
from collections.abc import Iterator
from typing import Any

from hptune.exceptions import ConfigError
from hptune.space._base import Dimension
from hptune.space._categorical import Conditional


class _Axis:
    """One node of the compiled grid: ``size`` points, the ``i``-th from :meth:`point`."""

    size: int

    def point(self, index: int) -> Any:
        raise NotImplementedError


class _Values(_Axis):
    def __init__(self, values: list[Any]) -> None:
        self.values, self.size = values, len(values)

    def point(self, index: int) -> Any:
        return self.values[index]


class _Product(_Axis):
    """A mapping: the product of its keys' axes, the last key varying fastest."""

    def __init__(self, keys: list[str], axes: list[_Axis]) -> None:
        self.keys, self.axes = keys, axes
        self.size = 1
        for axis in axes:
            self.size *= axis.size

    def point(self, index: int) -> dict[str, Any]:
        values = []
        for axis in reversed(self.axes):
            index, digit = divmod(index, axis.size)
            values.append(axis.point(digit))
        return dict(zip(self.keys, reversed(values)))


class _Union(_Axis):
    """A conditional choice: each branch's sub-grid in turn, tagged with its name."""

    def __init__(self, names: list[str], branches: list[_Product]) -> None:
        self.names, self.branches = names, branches
        self.starts = [0, *itertools.accumulate(b.size for b in branches)][:-1]
        self.size = sum(b.size for b in branches)

    def point(self, index: int) -> dict[str, Any]:
        k = bisect.bisect_right(self.starts, index) - 1
        return {"name": self.names[k], **self.branches[k].point(index - self.starts[k])}


def _compile(tree: dict[str, Any], n_points: int | None) -> _Product:
    return _Product(list(tree), [_compile_node(node, n_points) for node in tree.values()])


def _compile_node(node: Any, n_points: int | None) -> _Axis:
    if isinstance(node, Conditional):
        names = list(node.branches)
        return _Union(names, [_compile(node.branches[b], n_points) for b in names])
    if isinstance(node, Dimension):
        return _Values(node.grid_values(n_points))
    if isinstance(node, dict):
        return _compile(node, n_points)
    return _Values([node])


class Grid:
    """The points of ``space.grid(n_points)``, each decoded from its index when asked for.

    Build it with :meth:`hptune.space.Space.lazy_grid`. ``grid[i]`` is ``space.grid()[i]``
    (a fresh dict), computed in time proportional to the number of parameters; ``size``
    is exact, and is also ``len(grid)`` while it fits in an index (up to 2**63 - 1).

    Example:
        >>> from hptune.space import Space, randint
        >>> grid = Space({"a": randint(0, 9), "b": randint(0, 9)}).lazy_grid()
        >>> grid.size, grid[37]
        (100, {'a': 3, 'b': 7})
    """

    def __init__(self, tree: dict[str, Any], n_points: int | None) -> None:
        self._root = _compile(tree, n_points)
        #: How many points the grid has.
        self.size: int = self._root.size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> dict[str, Any]:
        integral = isinstance(index, numbers.Integral) and not isinstance(index, bool)
        if not integral or not 0 <= index < self.size:
            raise ConfigError(
                f"grid: index must be an int in [0, {self.size - 1}], got {index!r}; "
                f"the grid has {self.size} points."
            )
        return self._root.point(int(index))

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (self._root.point(i) for i in range(self.size))

    def __repr__(self) -> str:
        return f"Grid(size={self.size})"
