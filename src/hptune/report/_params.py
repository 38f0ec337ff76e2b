"""The objective against each parameter: a scatter per numeric parameter (log axis for
log dimensions, range bounds dashed), a strip plot with boxes per categorical one.

Three kinds of trial are drawn, because each is evidence about a region of the space:

- COMPLETE trials, filled blue (the best a green star): the values the study ranks by.
- PRUNED trials, hollow orange, at the value they last reported, at the step they reached.
  That is a low-fidelity reading (accuracy after 1 epoch of 25), not comparable with a
  finished run's value; so they are drawn apart (hollow, lighter the earlier they were
  cut), the legend says at which step, and they never enter a box or the best star. Without
  them a region the pruner always cut (every SGD trial, say) would look unexplored.
- Diverged trials have no value but are the evidence for "above this LR it diverges": red
  crosses on the worse edge of each panel (the bottom when maximizing).

One legend above the panels serves them all (counts are the study's).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from hptune.report._data import Empty, ReportData, choices, is_categorical
from hptune.report._plots import (
    BLUE,
    GREEN,
    GREY,
    ORANGE,
    RED,
    figure,
    register_plot,
    text,
    value_label,
)
from hptune.study import TrialRecord

#: Distinct pruning steps up to which the legend names each one; beyond, it gives the range.
_MAX_STEP_ENTRIES = 4


@dataclasses.dataclass(frozen=True)
class Pruned:
    """A PRUNED trial as the plots draw it: the last step it reported a finite value at."""

    trial: TrialRecord
    step: int
    value: float


def pruned_readings(data: ReportData) -> list[Pruned]:
    """The PRUNED trials that reported a finite value, each at the last step it did."""
    found = []
    for t in data.trials:
        if t.state != "PRUNED":
            continue
        finite = [(s, v) for s, v in t.intermediate_values.items() if math.isfinite(v)]
        if finite:
            step, value = max(finite)
            found.append(Pruned(t, step, value))
    return found


@register_plot("lr")
def _lr(data: ReportData) -> Any:
    found = data.lr_dimension()
    if found is None:
        numeric = ", ".join(n for n, _ in data.numeric()) or "none"
        raise Empty(
            "the space has no learning-rate dimension (a numeric one named lr or "
            f"learning_rate); its numeric parameters are: {numeric}. Use the 'params' plot."
        )
    return _panels(data, [found], ncols=1, width=6.5)


@register_plot("params")
def _params(data: ReportData) -> Any:
    lr = data.lr_dimension()
    dims = ([lr] if lr else []) + [d for d in data.dimensions if d != lr]
    if not dims:
        raise Empty("the space has no parameters.")
    return _panels(data, dims, ncols=min(3, len(dims)), width=11 if len(dims) > 1 else 6.5)


def _panels(data: ReportData, dims: list[Any], ncols: int, width: float) -> Any:
    pruned = pruned_readings(data)
    if not data.complete and not data.diverged and not pruned:
        raise Empty("no trial has a value yet, and none diverged.")
    shade = _Shade(pruned)
    nrows = math.ceil(len(dims) / ncols)
    fig = figure(width, 3.0 * nrows + 0.5)
    for i, (name, dim) in enumerate(dims):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        trials = [t for t in data.complete if name in t.params]
        cut = [p for p in pruned if name in p.trial.params]
        diverged = [t for t in data.trials if t.number in data.diverged and name in t.params]
        ax.set_title(text(name))
        ax.set_ylabel(value_label(data) if i % ncols == 0 else "")
        if not trials and not cut and not diverged:
            ax.text(0.5, 0.5, "no trial has it", ha="center", transform=ax.transAxes)
        elif is_categorical(dim):
            _strip(ax, dim, name, trials, cut, shade, data.best)
            index = {repr(v): j for j, v in enumerate(choices(dim))}
            _diverged(ax, [index.get(repr(t.params[name]), math.nan) for t in diverged], data)
        else:
            _scatter(ax, dim, name, trials, cut, shade, data.best)
            _diverged(ax, [t.params[name] for t in diverged], data)
    _legend(fig, data, pruned, shade, bounds=any(not is_categorical(d) for _, d in dims))
    return fig


class _Shade:
    """The colour of a pruned trial: lighter the earlier it was cut (the less its value says)."""

    def __init__(self, pruned: list[Pruned]) -> None:
        self.steps = sorted({p.step for p in pruned})

    def __call__(self, step: int) -> tuple[float, float, float]:
        from matplotlib.colors import to_rgb

        # By rank, not by step: Hyperband's rungs (2, 6, 18 of 25) stay apart.
        rank, last = self.steps.index(step), len(self.steps) - 1
        weight = 0.45 + 0.55 * (rank / last if last else 1.0)
        return tuple(1 - weight * (1 - c) for c in to_rgb(ORANGE))  # blended with white


def _draw_pruned(ax: Any, xs: list[float], cut: list[Pruned], shade: _Shade) -> None:
    if cut:
        ax.scatter(
            xs,
            [p.value for p in cut],
            s=18,
            marker="o",
            facecolors="none",
            edgecolors=[shade(p.step) for p in cut],
            linewidths=1.2,
            zorder=2,
            gid="pruned",
        )


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


def _scatter(
    ax: Any, dim: Any, name: str, trials: list[Any], cut: list[Pruned], shade: _Shade, best: Any
) -> None:
    _draw_pruned(ax, [p.trial.params[name] for p in cut], cut, shade)
    ax.scatter(
        [t.params[name] for t in trials],
        [t.value for t in trials],
        s=16,
        color=BLUE,
        zorder=3,
        gid="complete",
    )
    if best in trials:
        ax.scatter([best.params[name]], [best.value], s=90, marker="*", color=GREEN, zorder=4)
    for bound in (dim.low, dim.high):
        ax.axvline(bound, color=GREY, ls="--", lw=0.8)
    if dim.log:
        ax.set_xscale("log")
    ax.set_xlabel(text(name) + (" (log scale)" if dim.log else ""))


def _strip(
    ax: Any, dim: Any, name: str, trials: list[Any], cut: list[Pruned], shade: _Shade, best: Any
) -> None:
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
    # Pruned trials to the right of each column, apart from the box of complete ones.
    at = [index.get(repr(p.trial.params[name]), math.nan) for p in cut]
    _draw_pruned(ax, list(np.add(at, 0.3 + rng.uniform(-0.06, 0.06, len(at)))), cut, shade)
    for i, g in enumerate(groups):
        jitter = i + rng.uniform(-0.12, 0.12, len(g))
        ax.scatter(jitter, g, s=14, color=BLUE, alpha=0.8, zorder=3, gid="complete")
    if best in trials and repr(best.params[name]) in index:
        ax.scatter(
            [index[repr(best.params[name])]], [best.value], s=90, marker="*", color=GREEN, zorder=4
        )
    ax.set_xticks(range(len(labels)), [text(v) for v in labels])
    ax.set_xlim(-0.6, len(labels) - 0.3)
    ax.set_xlabel(text(name))


def _legend(fig: Any, data: ReportData, pruned: list[Pruned], shade: _Shade, bounds: bool) -> None:
    """One legend for every panel, above them; counts are the whole study's."""
    from matplotlib.lines import Line2D

    def dot(label: str, **style: Any) -> Any:
        return Line2D([], [], ls="none", label=label, **style)

    handles = []
    if data.complete:
        handles.append(dot(f"complete ({len(data.complete)})", marker="o", ms=5, color=BLUE))
    if data.best is not None:
        best = data.best
        handles.append(dot(f"best (trial {best.number})", marker="*", ms=11, color=GREEN))
    unit = data.step_unit
    if 0 < len(shade.steps) <= _MAX_STEP_ENTRIES:
        for step in shade.steps:
            n = sum(p.step == step for p in pruned)
            handles.append(
                dot(f"pruned at {unit} {step} ({n})", marker="o", ms=5, mfc="none", mec=shade(step))
            )
    elif shade.steps:
        handles.append(
            dot(
                f"pruned at {unit} {shade.steps[0]}–{shade.steps[-1]} ({len(pruned)}; "
                "lighter = earlier)",
                marker="o",
                ms=5,
                mfc="none",
                mec=ORANGE,
            )
        )
    if data.diverged:
        handles.append(
            dot(f"diverged ({len(data.diverged)}, no value)", marker="x", ms=6, mew=1.6, color=RED)
        )
    if bounds:
        handles.append(Line2D([], [], color=GREY, ls="--", lw=0.8, label="range bounds"))
    fig.legend(handles=handles, loc="outside upper center", ncols=min(len(handles), 3))
