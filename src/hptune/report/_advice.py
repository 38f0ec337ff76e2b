"""Advice read off a study's trials, each piece with the evidence behind it.

Four rules, each silent unless its evidence is there:

* ``boundary``: the best trials crowd a bound of a numeric range, so the optimum may lie
  beyond it. "The best trials" are the top ``k = max(3, ceil(top_fraction * n))`` of the
  ``n`` distinct configs among the COMPLETE trials that have the parameter (conditional
  parameters exist in only some), each as its best trial. The rule fires when all the top
  ``k`` lie within ``margin`` of the same bound, the distance measured as a fraction of
  the range in the dimension's own scale (log scale for log dimensions). It needs
  ``n >= 3``. Requiring all of them keeps it quiet
  on parameters that do not matter: there the best trials sit near a bound by chance
  only, with probability about ``2 * margin**k`` (0.2% for k = 3, margin = 0.1). It is
  silent at a bound no value can cross (:data:`HARD_LIMITS`: a warmup of 0 epochs, a
  momentum of 1), where there is nothing to widen.
* ``failures``: at least ``failure_fraction`` of the trials FAILED; the reasons are
  grouped (numbers masked, so "nan at epoch 3" and "nan at epoch 5" are one group).
* ``diverged_region``: a numeric parameter beyond some threshold has only diverged
  trials (NaN, inf, :class:`~hptune.trial.TrialDiverged`), at least ``min_region`` of them
  and at least two thirds of all diverged trials with that parameter. The parameter
  that explains the most divergences is reported.
* ``noise``: after a confirmation, the seed noise it measured (the pooled sd of the
  fresh-seed readings); otherwise, COMPLETE trials that ran the same config (equal config
  hash) disagree, and their half-range is the size below which differences between
  configs are noise.

The boundary rules count configs, not trials: a config trained more than once (a
confirmation re-trains the best ones with fresh seeds) is one piece of evidence.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from hptune.exceptions import ConfigError
from hptune.report._data import ReportData, fmt, gather, is_categorical, position
from hptune.space import FloatDimension, IntDimension
from hptune.study import Confirmation, Study, TrialRecord

_NUMBER = re.compile(r"[-+]?\d+(\.\d+)?([eE][-+]?\d+)?")
_REASON_CHARS = 60

#: The values a parameter cannot go below or above, by the last part of its dotted name:
#: a range that ends there has nothing beyond it to widen into. (A warmup or a weight
#: decay below 0, a momentum or an Adam beta of 1 or more, a dropout or a label smoothing
#: outside [0, 1] mean nothing; torch refuses most of them.)
HARD_LIMITS: dict[str, tuple[float | None, float | None]] = {
    "warmup_epochs": (0, None),
    "warmup_steps": (0, None),
    "weight_decay": (0, None),
    "momentum": (0, 1),
    "beta1": (0, 1),
    "beta2": (0, 1),
    "dropout": (0, 1),
    "label_smoothing": (0, 1),
}


@dataclasses.dataclass(frozen=True)
class Advice:
    """One piece of advice about a study.

    Args:
        kind: ``"boundary"``, ``"failures"``, ``"diverged_region"`` or ``"noise"``.
        message: One sentence for people: what to do and why.
        evidence: The facts behind it (trial numbers, values, bounds), JSON-able.

    Example:
        >>> Advice("noise", "repeats vary by ±0.8", {"trials": [3, 9]}).kind
        'noise'
    """

    kind: str
    message: str
    evidence: dict[str, Any] = dataclasses.field(default_factory=dict)


def advise(
    study: Study,
    *,
    margin: float = 0.1,
    top_fraction: float = 0.1,
    failure_fraction: float = 0.1,
    min_region: int = 3,
) -> list[Advice]:
    """The advice a study's trials support, in the order boundary, failures,
    diverged region, noise. A pure function of the stored trials.

    Args:
        study: The study to read.
        margin: How close to a bound counts as "on" it, as a fraction of the range.
        top_fraction: The share of COMPLETE trials counted as "the best" (at least 3).
        failure_fraction: The share of FAILED trials from which failures are reported.
        min_region: The fewest diverged trials a diverged region must hold.

    Example:
        >>> from hptune.space import uniform
        >>> from hptune.study import create_study
        >>> grid = uniform(0, 1, grid=[0.1, 0.5, 0.92, 0.96, 1.0])
        >>> study = create_study({"x": grid}, storage=None, direction="maximize",
        ...                      strategy="grid", seed=0)
        >>> study.optimize(lambda config, trial: config["x"])
        <StopReason.EXHAUSTED: 'exhausted'>
        >>> [a.message for a in advise(study)]
        ["widen x's upper bound (1): the best 3 trials are within 10% of it, so the optimum may lie beyond it."]
    """
    _check_fraction("margin", margin, upper=0.5)
    _check_fraction("top_fraction", top_fraction, upper=1.0)
    _check_fraction("failure_fraction", failure_fraction, upper=1.0)
    if isinstance(min_region, bool) or not isinstance(min_region, int) or min_region < 1:
        raise ConfigError(f"advise: min_region must be an int >= 1, got {min_region!r}.")
    return advice_for(gather(study), margin, top_fraction, failure_fraction, min_region)


def advice_for(
    data: ReportData,
    margin: float = 0.1,
    top_fraction: float = 0.1,
    failure_fraction: float = 0.1,
    min_region: int = 3,
) -> list[Advice]:
    """:func:`advise` on study data already gathered (the HTML report reads it once)."""
    advice = [
        a for name, dim in data.numeric() if (a := _boundary(data, name, dim, margin, top_fraction))
    ]
    advice += [
        a
        for name, values in _ordinal_choices(data)
        if (a := _edge_choice(data, name, values, top_fraction))
    ]
    advice += [a for a in (_failures(data, failure_fraction), _diverged(data, min_region)) if a]
    noise = _noise(data)
    return advice + ([noise] if noise else [])


def _check_fraction(key: str, value: Any, upper: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= upper:
        raise ConfigError(f"advise: {key} must be a number in (0, {upper}], got {value!r}.")


# -- boundary -------------------------------------------------------------------------------


def distinct_configs(data: ReportData) -> list[TrialRecord]:
    """The COMPLETE trials best first, one per config: a config trained more than once (a
    confirmation's fresh seeds, a repeat) is its best reading only, so that it counts as one
    piece of evidence, not as several."""
    seen: set[str] = set()
    out = []
    for t in data.ranked():
        key = t.config_hash or f"#{t.number}"
        if key not in seen:
            seen.add(key)
            out.append(t)
    return out


def _best_with(data: ReportData, name: str, top: float) -> list | None:
    """The best ``max(3, top share)`` distinct configs that set ``name``, as their best
    trials (:func:`distinct_configs`); None under 3."""
    ranked = [t for t in distinct_configs(data) if name in t.params]
    if len(ranked) < 3:
        return None
    return ranked[: min(len(ranked), max(3, math.ceil(top * len(ranked))))]


def _boundary(
    data: ReportData, name: str, dim: FloatDimension | IntDimension, margin: float, top: float
) -> Advice | None:
    best = _best_with(data, name, top)
    if best is None:
        return None
    where = [position(dim, t.params[name]) for t in best]
    for side, bound, near in (
        ("upper", dim.high, [u >= 1 - margin for u in where]),
        ("lower", dim.low, [u <= margin for u in where]),
    ):
        if all(near) and not _at_hard_limit(name, side, bound):
            return _boundary_advice(name, dim, side, bound, best, margin)
    return None


def _at_hard_limit(name: str, side: str, bound: float) -> bool:
    """Whether ``bound`` (the ``"upper"`` or ``"lower"`` end of ``name``'s range) lies at or
    past a value the parameter cannot cross (:data:`HARD_LIMITS`)."""
    low, high = HARD_LIMITS.get(name.rsplit(".", 1)[-1], (None, None))
    if side == "upper":
        return high is not None and bound >= high
    return low is not None and bound <= low


def _ordinal_choices(data: ReportData) -> list[tuple[str, list[float]]]:
    """``choice`` dimensions over three or more numbers (not booleans): ordered, so they
    have edges too (``batch_size: choice(32, 64, 128)``, a grid's ``lr: [0.1, 0.01]``)."""
    out = []
    for name, dim in data.dimensions:
        values = getattr(dim, "values", None) if is_categorical(dim) else None
        if values and len(values) >= 3 and all(_is_number(v) for v in values):
            out.append((name, sorted(values)))
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _edge_choice(data: ReportData, name: str, values: list[float], top: float) -> Advice | None:
    best = _best_with(data, name, top)
    if best is None:
        return None
    k = len(best)
    chosen = {t.params[name] for t in best}
    for side, edge, beyond in (("largest", values[-1], "above"), ("smallest", values[0], "below")):
        if chosen == {edge} and not _at_hard_limit(
            name, "upper" if beyond == "above" else "lower", edge
        ):
            message = (
                f"extend {name}'s choices {beyond} {fmt(edge)}: the best {k} trials all chose "
                f"its {side} value, so the optimum may lie beyond it."
            )
            evidence = {"parameter": name, "edge": edge, "side": side, "values": values,
                        "trials": [t.number for t in best]}  # fmt: skip
            return Advice("boundary", message, evidence)
    return None


def _boundary_advice(name, dim, side, bound, best, margin) -> Advice:
    scale = " in log scale" if dim.log else ""
    message = (
        f"widen {name}'s {side} bound ({fmt(bound)}): the best {len(best)} trials are within "
        f"{margin:.0%} of it{scale}, so the optimum may lie beyond it."
    )
    evidence = {
        "parameter": name,
        "bound": bound,
        "side": side,
        "trials": [t.number for t in best],
        "values": [t.params[name] for t in best],
    }
    return Advice("boundary", message, evidence)


# -- failures -------------------------------------------------------------------------------


def failure_groups(trials: Iterable[TrialRecord]) -> list[tuple[str, list[TrialRecord]]]:
    """The FAILED trials grouped by reason with numbers masked ("nan at epoch 3" and "nan at
    epoch 5" are one group): ``(first trial's reason, trials)``, largest group first (on a
    tie, the group that failed first). The report and ``hptune status`` both list these."""
    groups: dict[str, list[tuple[str, TrialRecord]]] = defaultdict(list)
    for t in trials:
        if t.state == "FAILED":
            reason = _reason(t)
            groups[_NUMBER.sub("N", reason)].append((reason, t))
    ordered = sorted(groups.values(), key=lambda g: (-len(g), g[0][1].number))
    return [(g[0][0], [t for _, t in g]) for g in ordered]


def _reason(t: TrialRecord) -> str:
    return (t.failure_reason or "no reason recorded").splitlines()[0]


def _failures(data: ReportData, fraction: float) -> Advice | None:
    failed = [t for t in data.trials if t.state == "FAILED"]
    if not failed or len(failed) < fraction * len(data.trials):
        return None
    groups = failure_groups(failed)
    parts = [f"{len(g)} × {_short(reason)!r}" for reason, g in groups]
    message = f"{len(failed)} of {len(data.trials)} trials failed: {', '.join(parts)}."
    evidence = {"reasons": {reason: [t.number for t in g] for reason, g in groups}}
    return Advice("failures", message, evidence)


def _short(reason: str) -> str:
    return reason if len(reason) <= _REASON_CHARS else reason[: _REASON_CHARS - 1] + "…"


# -- diverged region ----------------------------------------------------------------------


def _diverged(data: ReportData, min_region: int) -> Advice | None:
    if len(data.diverged) < min_region:
        return None
    found = [r for name, dim in data.numeric() if (r := _region(data, name, dim, min_region))]
    if not found:
        return None
    # The parameter that explains the most divergences; on a tie, the first in the space.
    name, dim, side, threshold, region = max(found, key=lambda r: len(r[4]))
    word = "above" if side == "upper" else "below"
    n = len(region)
    message = (
        f"{name} {word} {fmt(threshold)} always diverged ({n}/{n} trials); consider "
        f"{'lowering the upper' if side == 'upper' else 'raising the lower'} bound "
        f"({fmt(dim.high if side == 'upper' else dim.low)}) to {fmt(threshold)}."
    )
    evidence = {
        "parameter": name,
        "side": side,
        "threshold": threshold,
        "trials": [t.number for t in region],
        "values": [t.params[name] for t in region],
    }
    return Advice("diverged_region", message, evidence)


def _region(data: ReportData, name: str, dim, min_region: int):
    """The longest run of diverged trials from one end of ``name``'s sorted values, with
    the threshold between it and the first other trial, or None if too small."""
    finished = ("COMPLETE", "PRUNED", "FAILED")
    with_param = [t for t in data.trials if name in t.params and t.state in finished]
    n_diverged = sum(t.number in data.diverged for t in with_param)
    best = None
    for side, reverse in (("upper", True), ("lower", False)):
        ordered = sorted(with_param, key=lambda t: t.params[name], reverse=reverse)
        run = 0
        while run < len(ordered) and ordered[run].number in data.diverged:
            run += 1
        if run < max(min_region, math.ceil(2 * n_diverged / 3)) or run == len(ordered):
            continue
        inside, outside = ordered[run - 1].params[name], ordered[run].params[name]
        if inside == outside:
            continue
        threshold = _between(dim, inside, outside)
        if best is None or run > len(best[4]):
            best = (name, dim, side, threshold, ordered[:run])
    return best


def _between(dim: FloatDimension | IntDimension, a: float, b: float) -> float:
    """A round number between ``a`` and ``b`` (middle in the dimension's scale)."""
    mid = math.sqrt(a * b) if dim.log else (a + b) / 2
    for digits in range(1, 8):
        rounded = float(f"{mid:.{digits}g}")
        if min(a, b) < rounded < max(a, b):
            return (
                int(rounded) if isinstance(dim, IntDimension) and rounded.is_integer() else rounded
            )
    return mid


# -- noise between repeats -------------------------------------------------------------------


def _noise(data: ReportData) -> Advice | None:
    confirmed = data.confirmation
    if confirmed is not None and confirmed.noise is not None:
        return _confirmed_noise(confirmed)
    groups: dict[str, list[Any]] = defaultdict(list)
    for t in data.complete:
        if t.config_hash:
            groups[t.config_hash].append(t)
    repeats = [g for g in groups.values() if len(g) >= 2]
    if not repeats:
        return None
    spread = [(max(t.value for t in g) - min(t.value for t in g)) / 2 for g in repeats]
    widest = max(range(len(repeats)), key=lambda i: (spread[i], -repeats[i][0].number))
    group, half = repeats[widest], spread[widest]
    message = (
        f"repeats of trial {group[0].number}'s config vary by ±{fmt(half)} "
        f"({len(group)} runs: {', '.join(fmt(t.value) for t in group)}): "
        f"differences smaller than that are noise."
    )
    evidence = {
        "groups": [
            {"trials": [t.number for t in g], "values": [t.value for t in g], "half_range": s}
            for g, s in zip(repeats, spread)
        ],
        "half_range": half,
    }
    return Advice("noise", message, evidence)


def _confirmed_noise(confirmation: Confirmation) -> Advice:
    """The seed noise a confirmation measured: the pooled sd of its fresh-seed readings
    (the search readings that picked the configs are left out: they are the lucky ones),
    the figure the report's Confirmation section and ``hptune status`` give too."""
    groups = [c for c in confirmation.configs if c.values]
    message = (
        f"fresh-seed re-trainings of the top {len(groups)} configs vary by "
        f"±{fmt(confirmation.noise)} (pooled sd of {confirmation.n_readings} readings): "
        "differences smaller than that are noise."
    )
    evidence = {
        "groups": [
            {"trial": c.trial, "trials": list(c.values), "values": list(c.values.values())}
            for c in groups
        ],
        "pooled_sd": confirmation.noise,
    }
    return Advice("noise", message, evidence)
