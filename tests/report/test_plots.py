"""plot(): every registered kind writes a real PNG; unknown kinds and empty studies are
clear errors."""

from __future__ import annotations

import re

import matplotlib.image
import numpy as np
import pytest

from hptune.exceptions import ConfigError, HptuneError
from hptune.report import list_plots, plot
from hptune.report._data import gather
from hptune.report._plots import _best_so_far
from hptune.space import uniform
from hptune.study import create_study
from tests.report.conftest import sqlite_url

KINDS = ["curves", "history", "importance", "lr", "parallel", "params"]


def test_the_registry_lists_every_kind():
    assert list_plots() == KINDS


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_writes_a_png_that_is_not_blank(curve_study, tmp_path, kind):
    path = plot(curve_study[0], kind, tmp_path / f"{kind}.png", dpi=40)
    assert path == tmp_path / f"{kind}.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = matplotlib.image.imread(path)[..., :3]
    assert pixels.std() > 0.05  # axes, lines and text on white, not an empty canvas
    assert b"matplotlib.org" not in path.read_bytes()  # no URL even in PNG metadata


def test_plot_does_not_touch_pyplot_or_the_backend(curve_study, tmp_path):
    import matplotlib

    backend = matplotlib.get_backend()
    plot(curve_study[0], "history", tmp_path / "h.png", dpi=30)
    assert matplotlib.get_backend() == backend


def test_unknown_kind_lists_the_valid_ones(curve_study, tmp_path):
    message = (
        "unknown plot kind 'bogus'; valid kinds: curves, history, importance, lr, parallel, params."
    )
    with pytest.raises(ConfigError, match=re.escape(message)):
        plot(curve_study[0], "bogus", tmp_path / "x.png")


def test_nothing_to_plot_is_an_error_that_says_why(tmp_path):
    study = create_study({"x": uniform(0, 1)}, name="empty", storage=sqlite_url(tmp_path), seed=0)
    with pytest.raises(
        HptuneError,
        match=re.escape(
            "nothing to plot for 'history' in study 'empty': no trial has a value yet."
        ),
    ):
        plot(study, "history", tmp_path / "h.png")
    with pytest.raises(
        HptuneError,
        match=re.escape(
            "the space has no learning-rate dimension (a numeric one named lr or learning_rate); its numeric parameters are: x."
        ),
    ):
        plot(study, "lr", tmp_path / "lr.png")
    assert not (tmp_path / "h.png").exists()


def test_best_so_far_follows_the_direction(tmp_path):
    values = [0.5, 0.7, 0.6, 0.9, 0.8]
    for direction, expected in (
        ("maximize", [0.5, 0.7, 0.7, 0.9, 0.9]),
        ("minimize", [0.5, 0.5, 0.5, 0.5, 0.5]),
    ):
        study = create_study(
            {"x": uniform(0, 1)},
            name=direction,
            storage=sqlite_url(tmp_path),
            strategy="random",
            direction=direction,
            seed=0,
        )
        study.optimize(lambda c, t: values[t.number], n_trials=5)
        xs, ys = _best_so_far(gather(study))
        # One point per complete trial, plus the line carried to the last trial.
        assert xs == [0, 1, 2, 3, 4, 4] and ys == [*expected, expected[-1]]


def test_parallel_coordinates_normalize_log_dims_in_log_space(tmp_path):
    from hptune.report._parallel import _y
    from hptune.space import choice, loguniform

    lr = loguniform(1e-4, 1e-1)
    assert _y(lr, 1e-4) == 0.0 and _y(lr, 1e-1) == 1.0
    assert _y(lr, 1e-3) == pytest.approx(1 / 3)  # a third of the decades, not 0.009
    assert _y(choice(32, 64, 128), 64) == 0.5
    assert np.isnan(_y(lr, None))  # an inactive conditional parameter
