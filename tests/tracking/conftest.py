"""Fixtures of the tracking tests."""

from __future__ import annotations

import pytest

from hptune.space import uniform
from hptune.study import create_study

OBJECTIVE = "tests.tracking.objectives:curve"


@pytest.fixture
def make_study(tmp_path):
    """``make_study(name)``: a study of ``x`` in [0, 1] in a SQLite file of its own, whose
    value is called ``score`` (the curve's name in the trackers' stores)."""

    def make(name: str = "tracked", **kwargs):
        kwargs = {
            "strategy": "random",
            "pruner": "none",
            "seed": 0,
            "direction": "maximize",
            **kwargs,
        }
        return create_study(
            {"x": uniform(0, 1)},
            name=name,
            storage=f"sqlite:///{tmp_path / 'studies.db'}",
            metric="score",
            load_if_exists=True,
            **kwargs,
        )

    return make
