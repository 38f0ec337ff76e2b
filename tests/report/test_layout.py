"""Every plot keeps its text inside its figure: no axis label, tick label, title or legend
entry is cut off at the edge, for the report's plots and the LR finder's.

The check draws the figure as it is saved and compares the window extent of each text it
draws with the figure's box. Tick labels of ticks outside the axis limits are not drawn, so
they do not count.
"""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.text import Text

from hptune.report._data import gather
from hptune.report._plots import _PLOTS, _STYLE
from hptune.space import choice, loguniform, randint, uniform
from hptune.study import create_study
from hptune.training.lr_finder import LRFinderResult

#: Pixels a text may stick out by (antialiasing rounds extents outwards).
SLACK = 1.0


def _undrawn_tick_labels(fig) -> set[Text]:
    hidden: set[Text] = set()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            span = (hi - lo) * 1e-9
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                if not lo - span <= tick.get_loc() <= hi + span:
                    hidden.update((tick.label1, tick.label2))
    return hidden


def texts_outside(fig) -> list[str]:
    """The drawn texts of ``fig`` that stick out of it, with their extents in pixels."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    box, hidden = fig.bbox, _undrawn_tick_labels(fig)
    found = []
    for text in fig.findobj(Text):
        if not text.get_visible() or not text.get_text() or text in hidden:
            continue
        x0, y0, x1, y1 = text.get_window_extent(renderer).extents
        if x0 < -SLACK or y0 < -SLACK or x1 > box.width + SLACK or y1 > box.height + SLACK:
            found.append(f"{text.get_text()!r} at {x0:.0f},{y0:.0f}..{x1:.0f},{y1:.0f}")
    return found


def _report_figure(kind: str, study):
    with matplotlib.rc_context(_STYLE):  # the report draws in its own style
        fig = _PLOTS[kind](gather(study))
        return fig, texts_outside(fig)


@pytest.mark.parametrize("kind", sorted(_PLOTS))
def test_every_report_plot_keeps_its_text_inside_the_figure(curve_study, kind):
    _, outside = _report_figure(kind, curve_study[0])
    assert outside == []


@pytest.fixture(scope="module")
def wide_study():
    """Long parameter names and values, many of them, and a wide range of values."""
    space = {
        "learning_rate_of_the_encoder": loguniform(1e-6, 10.0),
        "optimizer_for_the_whole_network": choice("adam_with_decoupled_decay", "sgd"),
        "number_of_warmup_epochs_before_decay": randint(0, 12),
        "dropout_probability_in_the_head": uniform(0.0, 0.9),
        "batch_size": choice(16, 32, 64, 128, 256, 512),
        "label_smoothing": uniform(0.0, 0.3),
        "lr": loguniform(1e-5, 1.0),
    }
    study = create_study(
        space,
        name="wide",
        storage=None,
        strategy="random",
        pruner="none",
        seed=1,
        direction="maximize",
    )

    def objective(config, trial):
        value = 1e4 * config["lr"] + config["dropout_probability_in_the_head"]
        for epoch in range(1, 4):
            trial.report(epoch, value * (4 - epoch))
        return value

    study.optimize(objective, n_trials=12)
    return study


@pytest.mark.parametrize("kind", ["params", "parallel", "importance", "lr", "curves"])
def test_long_parameter_names_still_fit(wide_study, kind):
    _, outside = _report_figure(kind, wide_study)
    assert outside == []


def _lr_finder_result() -> LRFinderResult:
    lrs = np.geomspace(1e-6, 10.0, 80)
    smooth = 2.3 - 1.5 / (1 + np.exp(-3 * (np.log10(lrs) + 3))) + np.maximum(lrs - 0.3, 0)
    return LRFinderResult(
        tuple(lrs), tuple(smooth), tuple(smooth), 1e-3, (2e-4, 8e-3), "diverged", None
    )


def test_the_lr_finder_plot_keeps_its_text_inside_the_figure(tmp_path):
    # Drawn in matplotlib's default style, as `hptune lr-find --plot` does.
    fig = _lr_finder_result().figure()
    assert texts_outside(fig) == []
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["loss", "smoothed loss", "suggested range", "suggested LR 1.00e-03"]
    _lr_finder_result().plot(tmp_path / "lr.png")
    assert (tmp_path / "lr.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_check_finds_a_label_cut_off():
    # The LR finder's figure as it was drawn before it had a layout: the x label is cut.
    from matplotlib.figure import Figure

    result = _lr_finder_result()
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    ax.semilogx(result.lrs, result.smoothed_losses)
    ax.set_xlabel("learning rate")
    outside = texts_outside(fig)
    assert len(outside) == 1 and outside[0].startswith("'learning rate' at ")


def test_long_values_beside_a_parallel_axis_are_cut_with_an_ellipsis(wide_study):
    fig, _ = _report_figure("parallel", wide_study)
    shown = {t.get_text() for t in fig.axes[0].texts}
    assert "adam_with_dec…" in shown and "sgd" in shown
    assert "adam_with_decoupled_decay" not in shown
