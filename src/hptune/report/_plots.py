"""The report's plots, as PNG bytes, through one registry of plot kinds.

Figures are built with matplotlib's object API (``matplotlib.figure.Figure``, rendered by
Agg) and never through ``pyplot``, so making a report neither needs a display nor changes
the backend or the figures of the program that asked for it.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from hptune.exceptions import ConfigError, HptuneError
from hptune.report._data import Empty, ReportData, gather, require_matplotlib
from hptune.study import Study

BLUE, ORANGE, RED, GREEN, GREY = "#3b6ea8", "#e08a2c", "#c0392b", "#1e8449", "#9aa3ad"
_STYLE = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "legend.frameon": False,
    "legend.fontsize": 8,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
}
#: Every kind draws a figure from the report data, or raises Empty saying why it cannot.
PlotFunction = Callable[[ReportData], Any]
_PLOTS: dict[str, PlotFunction] = {}


def register_plot(kind: str) -> Callable[[PlotFunction], PlotFunction]:
    """Decorator: make ``kind`` a plot of :func:`plot` and of the HTML report."""

    def add(function: PlotFunction) -> PlotFunction:
        _PLOTS[kind] = function
        return function

    return add


def list_plots() -> list[str]:
    """The plot kinds :func:`plot` accepts, sorted."""
    return sorted(_PLOTS)


def plot(study: Study, kind: str, path: str | Path, *, dpi: int = 120) -> Path:
    """Write one plot of ``study`` as a PNG, SVG or PDF file (by ``path``'s suffix; PNG
    without one).

    Args:
        study: The study to plot.
        kind: One of :func:`list_plots`: ``history`` (value and best-so-far per trial),
            ``curves`` (learning curves, pruned ones cut short), ``lr`` (the metric
            against the learning rate), ``params`` (against every parameter),
            ``parallel`` (parallel coordinates), ``importance`` (parameter importance).
        path: Where to write it: ``.png``, ``.svg`` or ``.pdf``.
        dpi: Resolution (of a PNG, and of what a PDF or SVG holds as pixels).

    Returns:
        The path written.

    Raises:
        ConfigError: An unknown kind, or a file suffix none of those formats has.
        HptuneError: Nothing to plot yet (the message says why), or no matplotlib.

    Example:
        >>> plot(study, "history", "history.png")  # doctest: +SKIP
        PosixPath('history.png')
    """
    if kind not in _PLOTS:
        raise ConfigError(f"unknown plot kind {kind!r}; valid kinds: {', '.join(list_plots())}.")
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".") or "png"
    if fmt not in FORMATS:
        *others, last = ("." + f for f in FORMATS)
        raise ConfigError(
            f"plot: cannot write a {path.suffix!r} file ({path.name}); name it "
            f"{', '.join(others)} or {last}."
        )
    data = gather(study)
    try:
        figure_bytes = render(kind, data, dpi, fmt)
    except Empty as why:
        raise HptuneError(f"nothing to plot for {kind!r} in study {data.name!r}: {why}") from None
    path.write_bytes(figure_bytes)
    return path


def render(kind: str, data: ReportData, dpi: int, fmt: str = "png") -> bytes:
    """The bytes of plot ``kind`` as a ``fmt`` file (:data:`FORMATS`); raises
    :class:`Empty` when there is nothing to show."""
    return png(lambda: _PLOTS[kind](data), dpi, fmt)


#: The file formats :func:`plot` writes, by file suffix, each with the metadata that keeps
#: matplotlib's name and URL out of the file (the report must carry no URL, not even
#: inside a PNG).
FORMATS: dict[str, dict[str, None]] = {
    "png": {"Software": None},
    "svg": {"Creator": None},
    "pdf": {"Creator": None, "Producer": None},
}


def png(build: Callable[[], Any], dpi: int, fmt: str = "png") -> bytes:
    """Build a figure with ``build()`` in the report's style and return it as the bytes of
    a file in ``fmt`` (one of :data:`FORMATS`; PNG by default)."""
    mpl = require_matplotlib()
    with mpl.rc_context(_STYLE):
        fig = build()
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt, dpi=dpi, bbox_inches="tight", metadata=FORMATS[fmt])
    return buffer.getvalue()


def figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def text(s: Any) -> str:
    """A user string safe for matplotlib: ``$`` would start mathtext."""
    return str(s).replace("$", r"\$")


def value_label(data: ReportData) -> str:
    return f"objective ({'higher' if data.maximize else 'lower'} is better)"


# -- history ---------------------------------------------------------------------------------


@register_plot("history")
def _history(data: ReportData) -> Any:
    complete = data.complete
    pruned = [t for t in data.trials if t.state == "PRUNED" and _ok(t.value)]
    if not complete and not pruned:
        raise Empty("no trial has a value yet.")
    fig = figure(8, 3.4)
    ax = fig.add_subplot()
    if pruned:
        ax.scatter(
            [t.number for t in pruned],
            [t.value for t in pruned],
            s=16,
            marker="o",
            facecolors="none",
            edgecolors=ORANGE,
            label="pruned (last value)",
        )
    if complete:
        ax.scatter(
            [t.number for t in complete],
            [t.value for t in complete],
            s=16,
            color=BLUE,
            label="complete",
            zorder=3,
        )
        xs, ys = _best_so_far(data)
        ax.step(xs, ys, where="post", color=GREEN, lw=2, label="best so far", zorder=4)
    failed = [t.number for t in data.trials if t.state == "FAILED"]
    if failed:
        # Failed trials have no value; a tick along the bottom shows when they happened.
        ax.plot(
            failed,
            [0.02] * len(failed),
            "x",
            color=RED,
            ms=5,
            transform=ax.get_xaxis_transform(),
            label="failed",
            clip_on=False,
        )
    whole_numbers(ax, [t.number for t in data.trials])
    ax.set(xlabel="trial", ylabel=value_label(data), title="Optimization history")
    # Beside the axes, not on them: any corner of a history may hold its points.
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def whole_numbers(ax: Any, xs: list[int]) -> None:
    """Whole-number ticks on ``ax``'s x axis (trial numbers, steps), and half a number of
    room either side when they span one or two values (matplotlib would spread +-0.04
    around a single one, with fractional ticks)."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    if xs and max(xs) - min(xs) < 2:
        ax.set_xlim(min(xs) - 0.5, max(xs) + 0.5)


def _best_so_far(data: ReportData) -> tuple[list[int], list[float]]:
    pick = max if data.maximize else min
    xs, ys, best = [], [], None
    for t in data.complete:
        best = t.value if best is None else pick(best, t.value)
        xs.append(t.number)
        ys.append(best)
    xs.append(data.trials[-1].number)  # carry the line to the last trial
    ys.append(ys[-1])
    return xs, ys


def _ok(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


# -- learning curves ---------------------------------------------------------------------------


@register_plot("curves")
def _curves(data: ReportData) -> Any:
    reported = [t for t in data.trials if any(map(_ok, t.intermediate_values.values()))]
    if not reported:
        raise Empty("no trial reported intermediate values (trial.report(step, value)).")
    fig = figure(8, 3.8)
    ax = fig.add_subplot()
    best = data.best
    order = {"FAILED": 0, "PRUNED": 1, "COMPLETE": 2}
    for t in sorted(reported, key=lambda t: (order.get(t.state, 0), t is best)):
        _curve(ax, t, best)
    _curve_limits(ax, [t for t in reported if t.state != "FAILED"] or reported)
    whole_numbers(ax, [s for t in reported for s in t.intermediate_values])
    ax.set(xlabel=data.step_unit, ylabel="reported value", title="Learning curves")
    ax.legend(handles=_curve_legend(best, {t.state for t in reported}), loc="best")
    return fig


def _curve(ax: Any, t: Any, best: Any) -> None:
    points = sorted((s, v) for s, v in t.intermediate_values.items() if _ok(v))
    steps, values = [s for s, _ in points], [v for _, v in points]
    if t is best:
        ax.plot(steps, values, color=GREEN, lw=2.4, zorder=5)
    elif t.state == "COMPLETE":
        ax.plot(steps, values, color=BLUE, lw=1, alpha=0.45)
    else:
        color = ORANGE if t.state == "PRUNED" else RED
        ls = "--" if t.state == "PRUNED" else ":"
        ax.plot(steps, values, color=color, lw=1.1, ls=ls, alpha=0.85)
        # The cut: where the pruner stopped the trial (or where it failed).
        ax.plot(steps[-1:], values[-1:], "x", color=color, ms=6, mew=1.6)


def _curve_limits(ax: Any, trials: list[Any]) -> None:
    # Diverged trials report huge values; scale the axis to the trials that did not.
    values = np.array([v for t in trials for v in t.intermediate_values.values() if _ok(v)])
    lo, hi = float(values.min()), float(values.max())
    pad = (hi - lo) * 0.05 or abs(hi) * 0.05 or 1.0
    ax.set_ylim(lo - pad, hi + pad)


def _curve_legend(best: Any, states: set[str]) -> list[Any]:
    """Legend entries for the kinds of curve actually drawn."""
    from matplotlib.lines import Line2D

    entries = [
        ("COMPLETE", Line2D([], [], color=BLUE, lw=1, label="complete")),
        (
            "PRUNED",
            Line2D([], [], color=ORANGE, lw=1.1, ls="--", marker="x", label="pruned (x = cut)"),
        ),
        ("FAILED", Line2D([], [], color=RED, lw=1.1, ls=":", marker="x", label="failed")),
    ]
    handles = [line for state, line in entries if state in states]
    if best is not None:
        handles.insert(0, Line2D([], [], color=GREEN, lw=2.4, label=f"best (trial {best.number})"))
    return handles


# -- importance ---------------------------------------------------------------------------------


@register_plot("importance")
def _importance(data: ReportData) -> Any:
    from hptune.report._summary import importance

    return importance_figure(importance(data))


def importance_figure(result: Any) -> Any:
    """A bar chart of an :class:`~hptune.report._summary.Importance`."""
    if not result.values:
        raise Empty(result.note or "no importance could be computed.")
    names = list(result.values)[::-1]  # barh draws bottom-up: most important on top
    values = [result.values[n] for n in names]
    # Wider for long names, so the bars keep their room beside the labels.
    fig = figure(max(7.0, 4.5 + 0.07 * max(map(len, names))), 0.45 * len(names) + 1.4)
    ax = fig.add_subplot()
    ax.barh(range(len(names)), values, color=BLUE, height=0.6)
    for y, v in enumerate(values):
        ax.text(v, y, f" {v:.2f}", va="center", fontsize=8)
    ax.set_yticks(range(len(names)), [text(n) for n in names])
    ax.set_xlim(0, max(values) * 1.15 or 1)
    ax.grid(axis="y", visible=False)
    ax.set_xlabel("importance (sums to 1)")
    # On the figure, not the axes: centred over the bars, a long title would run off the
    # right edge when the names on the left are long.
    fig.suptitle(
        f"Parameter importance ({result.method}, {result.n_trials} complete trials)",
        fontsize="medium",
        fontweight="bold",
    )
    return fig
