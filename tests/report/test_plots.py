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


@pytest.mark.parametrize(
    ("name", "magic"), [("h.svg", b"<?xml"), ("h.PDF", b"%PDF-"), ("h", b"\x89PNG")]
)
def test_the_file_suffix_picks_the_format(curve_study, tmp_path, name, magic):
    data = plot(curve_study[0], "history", tmp_path / name, dpi=30).read_bytes()
    assert data.startswith(magic) and b"matplotlib.org" not in data


def test_a_suffix_no_format_has_is_refused_before_anything_is_written(curve_study, tmp_path):
    message = "plot: cannot write a '.jpg' file (h.jpg); name it .png, .svg or .pdf."
    with pytest.raises(ConfigError, match=re.escape(message)):
        plot(curve_study[0], "history", tmp_path / "h.jpg")
    assert not (tmp_path / "h.jpg").exists()


def test_unknown_kind_lists_the_valid_ones(curve_study, tmp_path):
    message = (
        "unknown plot kind 'bogus'; valid kinds: curves, history, importance, lr, parallel, params."
    )
    with pytest.raises(ConfigError, match=re.escape(message)):
        plot(curve_study[0], "bogus", tmp_path / "x.png")


def test_nothing_to_plot_is_an_error_that_says_why(tmp_path):
    study = create_study(
        {"x": uniform(0, 1)},
        name="empty",
        storage=sqlite_url(tmp_path),
        seed=0,
        direction="maximize",
    )
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


def test_one_trial_and_one_step_get_whole_number_axes(tmp_path):
    from hptune.report._plots import _curves, _history

    study = create_study({"x": uniform(0, 1)}, name="one", storage=sqlite_url(tmp_path),
                         strategy="random", direction="maximize", seed=0)  # fmt: skip

    def one_step(config, trial):
        trial.report(1, config["x"])
        return config["x"]

    study.optimize(one_step, n_trials=1)
    data = gather(study)
    for build, only in ((_history, 0), (_curves, 1)):  # trial 0; step 1
        (ax,) = build(data).axes
        assert ax.get_xlim() == (only - 0.5, only + 0.5)
        ticks = [t for t in ax.get_xticks() if only - 0.5 <= t <= only + 0.5]
        assert ticks == [only]  # not -0.04, -0.02, ... around it


def test_parallel_coordinates_normalize_log_dims_in_log_space(tmp_path):
    from hptune.report._parallel import _y
    from hptune.space import choice, loguniform

    lr = loguniform(1e-4, 1e-1)
    assert _y(lr, 1e-4) == 0.0 and _y(lr, 1e-1) == 1.0
    assert _y(lr, 1e-3) == pytest.approx(1 / 3)  # a third of the decades, not 0.009
    assert _y(choice(32, 64, 128), 64) == 0.5
    assert np.isnan(_y(lr, None))  # an inactive conditional parameter


def _figure(kind: str, study):
    """The matplotlib figure of a plot kind, drawn (so ticks are placed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from hptune.report._plots import _PLOTS

    fig = _PLOTS[kind](gather(study))
    FigureCanvasAgg(fig).draw()
    return fig


def test_parallel_coordinates_show_an_absent_parameter_as_absent(curve_study):
    from hptune.report._parallel import ABSENT_Y

    study, _ = curve_study
    ax = _figure("parallel", study).axes[0]
    names = [label.get_text() for label in ax.get_xticklabels()]
    k = names.index("optimizer.sgd.momentum")
    without = [t for t in gather(study).complete if "optimizer.sgd.momentum" not in t.params]
    assert without  # adam trials: the premise
    for line in ax.lines:
        if line.get_linestyle() == "-":  # a solid line joins only neighbouring axes
            xs, ys = np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)
            drawn = np.isfinite(ys[:-1]) & np.isfinite(ys[1:])
            assert (np.diff(xs)[drawn] == 1).all(), (xs, ys)
    absent = [
        (x, y)
        for line in ax.lines
        if line.get_marker() == "o"
        for x, y in zip(line.get_xdata(), line.get_ydata())
        if x == k
    ]
    assert absent == [(k, ABSENT_Y)] * len(without)


def test_the_lr_plot_shows_diverged_trials_on_the_worse_edge(curve_study):
    study, _ = curve_study
    data = gather(study)
    diverged = sorted(t.params["lr"] for t in data.trials if t.number in data.diverged)
    assert diverged  # the fixture diverges above lr = 0.3
    ax = _figure("lr", study).axes[0]
    (marks,) = [line for line in ax.lines if line.get_label().startswith("diverged")]
    assert sorted(marks.get_xdata()) == diverged
    assert set(marks.get_ydata()) == {0.03}  # axes fraction: the bottom, as higher is better
    assert marks.get_label() == f"diverged ({len(diverged)}, no value)"


def test_learning_curves_have_whole_steps_named_after_the_unit(tmp_path):
    from hptune.runner import STEP_UNIT_ATTR

    study = create_study(
        {"x": uniform(0, 1)}, name="two", storage=sqlite_url(tmp_path), seed=0, direction="maximize"
    )

    def objective(config, trial):
        for step in (1, 2):  # two steps: matplotlib's own ticks would be 1.0, 1.2, ... 2.0
            trial.report(step, config["x"] * step)
        return config["x"]

    study.optimize(objective, n_trials=3)
    ax = _figure("curves", study).axes[0]
    lo, hi = ax.get_xlim()
    ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
    assert ticks == [1.0, 2.0] and ax.get_xlabel() == "step"
    study.optuna_study.set_user_attr(STEP_UNIT_ATTR, "epoch")  # as a run from a spec sets it
    assert _figure("curves", study).axes[0].get_xlabel() == "epoch"


def _sgd_always_pruned(tmp_path):
    """Six grid trials: adam ones complete after 4 steps with value lr; sgd ones are cut at
    step 1 (lr = 0.01) or 2 (lr = 0.1, 1.0), reporting 10 * lr * step on the way."""
    from hptune.space import choice, loguniform
    from hptune.trial import TrialPruned

    space = {
        "lr": loguniform(1e-3, 1.0, grid=[0.01, 0.1, 1.0]),
        "optimizer": choice("adam", "sgd"),
    }
    study = create_study(
        space,
        name="sgd",
        storage=sqlite_url(tmp_path),
        strategy="grid",
        strategy_options={"shuffle": False},
        seed=0,
        direction="maximize",
    )

    def objective(config, trial):
        if config["optimizer"] == "adam":
            for step in range(1, 5):
                trial.report(step, config["lr"])
            return config["lr"]
        cut = 1 if config["lr"] == 0.01 else 2
        for step in range(1, cut + 1):
            trial.report(step, 10 * config["lr"] * step)
        raise TrialPruned("scripted")

    study.optimize(objective)
    return study


def _offsets(ax, gid):
    return sorted(
        (round(float(x), 6), round(float(y), 6))
        for c in ax.collections
        if c.get_gid() == gid
        for x, y in c.get_offsets()
    )


def test_pruned_trials_are_drawn_at_the_value_and_step_they_reached(tmp_path):
    study = _sgd_always_pruned(tmp_path)
    fig = _figure("params", study)
    lr_ax, optimizer_ax = fig.axes
    # lr 0.01 was cut at step 1 (10 * 0.01 * 1), lr 0.1 and 1.0 at step 2 (10 * lr * 2).
    assert _offsets(lr_ax, "pruned") == [(0.01, 0.1), (0.1, 2.0), (1.0, 20.0)]
    assert _offsets(lr_ax, "complete") == [(0.01, 0.01), (0.1, 0.1), (1.0, 1.0)]
    (legend,) = fig.legends
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels == [
        "complete (3)",
        "best (trial 4)",
        "pruned at step 1 (1)",
        "pruned at step 2 (2)",
        "range bounds",
    ]


def test_a_choice_whose_every_trial_was_pruned_is_visible(tmp_path):
    study = _sgd_always_pruned(tmp_path)
    optimizer_ax = _figure("params", study).axes[1]
    # sgd is the second column (x = 1): its three pruned trials sit just right of it.
    pruned = _offsets(optimizer_ax, "pruned")
    assert len(pruned) == 3 and all(1.2 < x < 1.4 for x, _ in pruned)
    assert sorted(y for _, y in pruned) == [0.1, 2.0, 20.0]
    assert all(x < 0.5 for x, _ in _offsets(optimizer_ax, "complete"))  # adam only


def test_pruned_earlier_is_drawn_lighter(tmp_path):
    study = _sgd_always_pruned(tmp_path)
    lr_ax = _figure("params", study).axes[0]
    (pruned,) = [c for c in lr_ax.collections if c.get_gid() == "pruned"]
    by_x = dict(zip(pruned.get_offsets()[:, 0], pruned.get_edgecolors()))
    # Lighter is closer to white: the step-1 trial's edge has the larger RGB sum.
    assert by_x[0.01][:3].sum() > by_x[0.1][:3].sum() == pytest.approx(by_x[1.0][:3].sum())


def test_a_choice_of_numbers_reads_low_to_high_on_an_axis():
    from hptune.report._data import choices
    from hptune.space import choice

    assert choices(choice(0.1, 0.01, 0.001)) == [0.001, 0.01, 0.1]  # a grid's order, reversed
    assert choices(choice("relu", "gelu")) == ["relu", "gelu"]  # names keep theirs
    assert choices(choice(True, False)) == [True, False]
