"""The objective against each parameter: a scatter per numeric parameter (log axis for
log dimensions, range bounds dashed), a strip plot with boxes per categorical one.

Diverged trials have no value but are the evidence for "above this LR it diverges": they
are drawn as red crosses on the worse edge of each panel (the bottom when maximizing)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from hptune.report._data import Empty, ReportData, choices, is_categorical
from hptune.report._plots import (
    BLUE,
    GREEN,
    GREY,
    RED,
    figure,
    register_plot,
    text,
    value_label,
)


@register_plot("lr")
def _lr(data: ReportData) -> Any:
    found = data.lr_dimension()
    if found is None:
        numeric = ", ".join(n for n, _ in data.numeric()) or "none"
        raise Empty(
            "the space has no learning-rate dimension (a numeric one named lr or "
            f"learning_rate); its numeric parameters are: {numeric}. Use the 'params' plot."
        )
    return _panels(data, [found], ncols=1, width=6)


@register_plot("params")
def _params(data: ReportData) -> Any:
    lr = data.lr_dimension()
    dims = ([lr] if lr else []) + [d for d in data.dimensions if d != lr]
    if not dims:
        raise Empty("the space has no parameters.")
    return _panels(data, dims, ncols=min(3, len(dims)), width=11 if len(dims) > 1 else 6)


def _panels(data: ReportData, dims: list[Any], ncols: int, width: float) -> Any:
    if not data.complete and not data.diverged:
        raise Empty("no complete trial yet.")
    nrows = math.ceil(len(dims) / ncols)
    fig = figure(width, 3.0 * nrows)
    for i, (name, dim) in enumerate(dims):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        trials = [t for t in data.complete if name in t.params]
        diverged = [t for t in data.trials if t.number in data.diverged and name in t.params]
        ax.set_title(text(name))
        ax.set_ylabel(value_label(data) if i % ncols == 0 else "")
        if not trials and not diverged:
            ax.text(0.5, 0.5, "no complete trial has it", ha="center", transform=ax.transAxes)
        elif is_categorical(dim):
            _strip(ax, dim, name, trials, data.best)
            index = {repr(v): j for j, v in enumerate(choices(dim))}
            _diverged(ax, [index.get(repr(t.params[name]), math.nan) for t in diverged], data)
        else:
            _scatter(ax, dim, name, trials, data.best)
            _diverged(ax, [t.params[name] for t in diverged], data)
    return fig


def _diverged(ax: Any, xs: list[float], data: ReportData) -> None:
    """Red crosses for diverged trials at their parameter value, on the worse edge."""
    if not xs:
        return
    edge = 0.03 if data.maximize else 0.97
    ax.plot(
        xs,
        [edge] * len(xs),
        "x",
        color=RED,
        ms=6,
        mew=1.6,
        transform=ax.get_xaxis_transform(),  # x in data, y in axes fractions
        clip_on=False,
        label=f"diverged ({len(xs)}, no value)",
        zorder=5,
    )
    ax.legend(loc="best")


def _scatter(ax: Any, dim: Any, name: str, trials: list[Any], best: Any) -> None:
    ax.scatter([t.params[name] for t in trials], [t.value for t in trials], s=16, color=BLUE)
    if best in trials:
        ax.scatter([best.params[name]], [best.value], s=90, marker="*", color=GREEN, zorder=4)
    for bound in (dim.low, dim.high):
        ax.axvline(bound, color=GREY, ls="--", lw=0.8)
    if dim.log:
        ax.set_xscale("log")
    ax.set_xlabel(text(f"{name} ({'log scale, ' if dim.log else ''}dashed: range bounds)"))


def _strip(ax: Any, dim: Any, name: str, trials: list[Any], best: Any) -> None:
    labels = choices(dim)
    index = {repr(v): i for i, v in enumerate(labels)}
    rng = np.random.default_rng(0)  # fixed jitter: the same study draws the same picture
    groups = [
        [t.value for t in trials if index.get(repr(t.params[name])) == i]
        for i in range(len(labels))
    ]
    boxed = [i for i, g in enumerate(groups) if len(g) >= 3]
    if boxed:
        ax.boxplot(
            [groups[i] for i in boxed],
            positions=boxed,
            widths=0.5,
            showfliers=False,
            medianprops={"color": GREY},
            boxprops={"color": GREY},
            whiskerprops={"color": GREY},
            capprops={"color": GREY},
        )
    for i, g in enumerate(groups):
        ax.scatter(i + rng.uniform(-0.12, 0.12, len(g)), g, s=14, color=BLUE, alpha=0.8, zorder=3)
    if best in trials and repr(best.params[name]) in index:
        ax.scatter(
            [index[repr(best.params[name])]], [best.value], s=90, marker="*", color=GREEN, zorder=4
        )
    ax.set_xticks(range(len(labels)), [text(v) for v in labels])
    ax.set_xlim(-0.6, len(labels) - 0.4)
    ax.set_xlabel(text(name))
