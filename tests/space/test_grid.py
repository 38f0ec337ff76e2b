"""Lazy grids: each point decoded from its index agrees with the listed grid (nested
conditionals and constants included), and sizes are exact without listing."""

from __future__ import annotations

import re

import pytest

from hptune.exceptions import ConfigError
from hptune.space import Space, choice, loguniform, randint, uniform

SPACES = {
    "flat": {"lr": [0.1, 0.01, 0.001], "batch_size": [32, 64]},
    "constants and nesting": {
        "model": {"width": randint(16, 18), "act": "relu", "dims": {"constant": [1, 2]}},
        "epochs": 3,
        "lr": uniform(0, 1, n_grid=2),
        "flag": None,
    },
    "conditional": {
        "lr": loguniform(1e-3, 1e-1, n_grid=3),
        "optimizer": choice(
            {"adam": {}, "sgd": {"momentum": [0.0, 0.9], "nesterov": choice(True, False)}}
        ),
        "epochs": 10,
    },
    "nested conditionals": {
        "scheduler": choice(
            {
                "cosine": {},
                "plateau": {
                    "factor": [0.1, 0.5],
                    "mode": choice({"rel": {"threshold": [1e-3, 1e-2, 1e-1]}, "abs": {}}),
                },
            }
        ),
        "optimizer": choice({"adam": {"beta1": [0.9, 0.95]}, "sgd": {}}),
        "seed_tag": "x",
    },
    "empty": {},
}


@pytest.mark.parametrize("name", sorted(SPACES))
def test_every_point_decoded_from_its_index_is_the_listed_grids(name):
    space = Space(SPACES[name])
    grid = space.grid(n_points=3)
    assert [space.grid_point(i, n_points=3) for i in range(len(grid))] == grid
    assert list(space.lazy_grid(n_points=3)) == grid
    assert space.grid_size(n_points=3) == len(grid) == len(space.lazy_grid(n_points=3))


def test_nested_conditional_sizes_add_over_branches_and_multiply_over_keys():
    # scheduler: cosine 1 + plateau 2 factors x (rel 3 + abs 1) = 9; optimizer: 2 + 1 = 3.
    space = Space(SPACES["nested conditionals"])
    assert space.grid_size() == 9 * 3 == 27
    # Index 5 is scheduler point 1 (plateau, factor 0.1, rel 1e-3), optimizer point 2 (sgd).
    assert space.grid_point(5) == {
        "scheduler": {"name": "plateau", "factor": 0.1, "mode": {"name": "rel", "threshold": 1e-3}},
        "optimizer": {"name": "sgd"},
        "seed_tag": "x",
    }


def test_a_grid_of_a_trillion_points_is_sized_and_decoded_without_listing_it(monkeypatch):
    monkeypatch.setattr(Space, "grid", lambda *a, **k: pytest.fail("the grid was listed"))
    space = Space({f"d{i:02d}": randint(0, 9) for i in range(12)})
    assert space.grid_size() == 10**12
    # Mixed radix 10, the last key varying fastest: the digits of the index, in order.
    point = space.lazy_grid()[123_456_789_012]
    assert "".join(str(point[f"d{i:02d}"]) for i in range(12)) == "123456789012"
    assert space.grid_point(10**12 - 1) == {f"d{i:02d}": 9 for i in range(12)}


def test_decoded_points_are_independent_dicts():
    grid = Space(SPACES["nested conditionals"]).lazy_grid()
    first = grid[0]
    first["scheduler"]["name"] = "changed"
    assert grid[0]["scheduler"] == {"name": "cosine"}


def test_an_index_outside_the_grid_is_refused_with_the_valid_range():
    space = Space(SPACES["flat"])
    with pytest.raises(
        ConfigError,
        match=re.escape("grid: index must be an int in [0, 5], got 6; the grid has 6 points."),
    ):
        space.grid_point(6)
    with pytest.raises(ConfigError, match=re.escape("got -1")):
        space.lazy_grid()[-1]
    with pytest.raises(ConfigError, match=re.escape("got True")):
        space.lazy_grid()[True]
