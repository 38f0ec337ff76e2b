"""Parallel coordinates, drawn by hand with matplotlib (it has no such plot of its own).

One vertical axis per parameter and one for the objective; each COMPLETE trial is a line
across them, coloured by its value, the best drawn last so they stay visible. Every axis
is normalized to [0, 1] over the parameter's declared range, in the dimension's own scale
(log dimensions in log space), so a line near the top of an axis means "near the upper
bound" on every axis alike. Categorical values are evenly spaced. A parameter a trial does
not have (a conditional one of another branch) is shown as absent: a hollow marker below the
axis, labelled "absent", reached by dotted segments, so no line seems to cross the axis at
a value.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from hptune.report._data import Empty, ReportData, choices, fmt, is_categorical, position
from hptune.report._plots import figure, register_plot, text, value_label

#: Where a parameter a trial does not have is drawn: below its axis's [0, 1] range.
ABSENT_Y = -0.16
#: Characters of a value label beside an axis; longer ones are cut with an ellipsis.
MAX_LABEL = 14


@register_plot("parallel")
def parallel(data: ReportData) -> Any:
    trials = data.ranked()[::-1]  # worst first, so the best lines are drawn on top
    if len(trials) < 2:
        raise Empty(f"needs at least 2 complete trials; the study has {len(trials)}.")
    axes = [
        (name, dim)
        for name, dim in data.dimensions
        if any(name in t.params for t in trials) and (is_categorical(dim) or dim.low < dim.high)
    ]
    if not axes:
        raise Empty("no parameter varies in this space.")
    values = np.array([t.value for t in trials])
    lo, hi = float(values.min()), float(values.max())
    rows = np.array([[_y(dim, t.params.get(name)) for name, dim in axes] for t in trials])
    rows = np.column_stack(
        [rows, (values - lo) / (hi - lo) if hi > lo else np.full_like(values, 0.5)]
    )

    # At most as wide as the report shows a plot unscaled, so the labels stay readable.
    fig = figure(min(11.0, max(6.0, 1.5 * (len(axes) + 1))), 3.8)
    ax = fig.add_subplot()
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    # Better is brighter whichever the direction: viridis for maximize, reversed to minimize.
    colors = ScalarMappable(Normalize(lo, hi), "viridis" if data.maximize else "viridis_r")
    xs = np.arange(len(axes) + 1)
    for row, value in zip(rows, values):
        _trial_line(ax, xs, row, colors.to_rgba(value))
    _draw_axes(ax, axes, lo, hi, absent=np.isnan(rows).any(axis=0))
    fig.colorbar(colors, ax=ax, label=value_label(data), pad=0.02)
    ax.set_title("Parallel coordinates (complete trials; bright = better)")
    return fig


def _trial_line(ax: Any, xs: np.ndarray, row: np.ndarray, color: Any) -> None:
    """Solid between the values a trial has (NaN breaks the line at an absent one), dotted
    to and from the hollow "absent" markers."""
    ax.plot(xs, row, color=color, lw=1.2, alpha=0.75)
    missing = np.isnan(row)
    if not missing.any():
        return
    ys = np.where(missing, ABSENT_Y, row)
    dotted_x: list[float] = []
    dotted_y: list[float] = []
    for i in range(len(xs) - 1):
        if missing[i] or missing[i + 1]:
            dotted_x += [xs[i], xs[i + 1], math.nan]
            dotted_y += [ys[i], ys[i + 1], math.nan]
    ax.plot(dotted_x, dotted_y, color=color, lw=0.8, ls=":", alpha=0.6)
    ax.plot(xs[missing], ys[missing], "o", ms=4, mfc="white", mec=color, ls="none")


def _y(dim: Any, x: Any) -> float:
    if x is None:
        return math.nan  # inactive in this trial's branch: the line skips this axis
    if is_categorical(dim):
        labels = _labels(dim)
        if repr(x) not in labels:  # not a value of the space (a hand-edited study)
            return math.nan
        return labels.index(repr(x)) / (len(labels) - 1) if len(labels) > 1 else 0.5
    return position(dim, x)


def _short(label: str) -> str:
    """A value label that stays between its axis and the next (one axis apart is about
    :data:`MAX_LABEL` characters at this font size)."""
    return label if len(label) <= MAX_LABEL else label[: MAX_LABEL - 1] + "…"


def _labels(dim: Any) -> list[str]:
    return [repr(v) for v in choices(dim)]


def _draw_axes(
    ax: Any, axes: list[tuple[str, Any]], lo: float, hi: float, absent: np.ndarray
) -> None:
    for i, (_, dim) in enumerate(axes):
        ax.vlines(i, 0.0, 1.0, color="#444444", lw=1)  # the range only; "absent" is below
        if absent[i]:
            ax.text(i + 0.04, ABSENT_Y, "absent", fontsize=7, va="center", color="#777777")
        if is_categorical(dim):
            values = choices(dim)
            labels, ticks = [str(v) for v in values], [_y(dim, v) for v in values]
        else:
            labels = [fmt(dim.low), fmt(dim.high)]
            ticks = [0.0, 1.0]
        for y, label in zip(ticks, labels):
            ax.text(i + 0.04, y, text(_short(label)), fontsize=7, va="center", color="#333333")
    n = len(axes)
    ax.vlines(n, 0.0, 1.0, color="#444444", lw=1)
    ax.text(n + 0.04, 0.0, fmt(lo), fontsize=7, va="center")
    ax.text(n + 0.04, 1.0, fmt(hi), fontsize=7, va="center")
    names = [text(name) + (" (log)" if getattr(dim, "log", False) else "") for name, dim in axes]
    ax.set_xticks(
        range(n + 1),
        [*names, "objective"],
        rotation=20 if n > 4 else 0,
        ha="right" if n > 4 else "center",
    )
    ax.set_yticks([])
    ax.grid(False)
    ax.spines[["left", "bottom"]].set_visible(False)
    ax.set_xlim(-0.1, n + 0.45)
    ax.set_ylim(ABSENT_Y - 0.06 if absent.any() else -0.06, 1.06)
