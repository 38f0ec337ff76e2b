"""``lr: auto``: the learning-rate range comes from the LR range test, not from a guess.

``hptune lr-find SPEC`` prints a search range that a user had to copy into the spec by
hand. With ``lr: auto`` in the space, the runner runs that test itself when it creates the
study: once per optimizer the space offers (the branches of a conditional ``optimizer``,
else the one the config names; each on the space's first grid point of every other
parameter, a range's middle and a choice's first value, as ``lr-find`` does), and searches ``loguniform(low, high)`` over the union of the ranges
they suggest. What it found is kept as the study attribute :data:`LR_AUTO_ATTR` (the range,
each optimizer's suggested LR and range, the seed), so re-opening the study reuses it: the
test runs once per study, and the study's space never changes under it. Under a strategy
that takes priors (``multi-fidelity``, the default), each optimizer's suggested LR is also
the mode of its LR prior (:func:`lr_priors`), so the first trial trains each optimizer at
the LR its own test suggested; a prior the spec gives ``lr`` wins.

Until the study exists (``hptune validate``, the checks before a run), ``lr: auto`` stands
for ``hptune.spec.LR_AUTO_CHECKED_AS``, the test's own sweep, which the checks try at both
ends. The spec keeps ``auto`` as written, so re-running it is the same spec.
"""

from __future__ import annotations

import math
from typing import Any

from hptune.exceptions import HptuneError
from hptune.spec import LR_AUTO_CHECKED_AS, with_lr

#: Study user attribute: ``{"range": [low, high], "optimizers": {name: {"lr", "range",
#: "why_none"}}, "seed": n}``, what the range test found when the study was created.
LR_AUTO_ATTR = "hptune.lr_auto"
#: Why ``lr: auto`` cannot serve a full objective (``check_spec`` and the test say it alike).
NEEDS_MODEL_TASK = (
    "auto needs a task the recipe trains (the LR range test trains its model), and {task} "
    "is a full objective; give lr a range such as loguniform(1e-4, 1e-1)"
)


def resolved(found: dict[str, Any]) -> str:
    """The form ``loguniform(low, high)`` of a recorded range test."""
    low, high = found["range"]
    return f"loguniform({low!r}, {high!r})"


def run_range_tests(spec: Any) -> dict[str, Any]:
    """Run the LR range test on the spec's task once per optimizer of its space; the record
    :data:`LR_AUTO_ATTR` keeps.

    Raises:
        HptuneError: The task is not one the recipe trains, or the test found no range for
            any optimizer (the loss never fell): one line saying what to write instead.
    """
    from hptune.tasks import Task, resolve_task
    from hptune.training import lr_find

    task = resolve_task(spec.task)
    if not isinstance(task, Task):
        raise HptuneError("lr: " + NEEDS_MODEL_TASK.format(task=repr(spec.task)) + ".")
    seed = spec.seed or 0
    data = task.datasets()
    optimizers: dict[str, Any] = {}
    for name, config in _configs_per_optimizer(spec.space).items():
        result = lr_find(task, config, seed=seed, data=data)
        span = result.suggested_range
        optimizers[name] = {
            "lr": result.suggested_lr,
            "range": None if span is None else [float(span[0]), float(span[1])],
            "why_none": result.no_suggestion_reason if span is None else None,
        }
    spans = [o["range"] for o in optimizers.values() if o["range"] is not None]
    if not spans:
        reasons = "; ".join(f"{n}: {o['why_none'] or 'no range'}" for n, o in optimizers.items())
        raise HptuneError(
            f"lr: auto: the LR range test found no range ({reasons}); run `hptune lr-find` "
            "on the spec and read the plot, or give lr a range such as loguniform(1e-4, 1e-1)."
        )
    low = min(s[0] for s in spans)
    high = max(s[1] for s in spans)
    return {"range": [_round(low), _round(high)], "optimizers": optimizers, "seed": seed}


def lr_priors(found: dict[str, Any], spec: Any) -> dict[str, Any] | None:
    """The spec's strategy ``priors`` option with each optimizer's LR prior centred on the LR
    its range test suggested (a quarter of its suggested range wide, in decades, at least
    0.25; one prior per branch when the space has an ``optimizer`` choice), for a strategy
    that takes priors (``multi-fidelity``). None when the strategy takes none, the spec
    gives ``lr`` a prior itself, or no optimizer has a suggestion."""
    from hptune.study import create_strategy

    if "priors" not in create_strategy(spec.strategy).option_rules:
        return None
    given = dict(spec.strategy_options.get("priors") or {})
    if "lr" in given:
        return None
    low, high = found["range"]
    each = {
        name: {
            "mode": min(max(o["lr"], low), high),
            "width": round(max(0.25, math.log10(o["range"][1] / o["range"][0]) / 4), 3),
        }
        for name, o in found["optimizers"].items()
        if o["range"] is not None and o["lr"] is not None
    }
    if not each:
        return None
    if _optimizer_choice(spec.space) is None:
        return {**given, "lr": next(iter(each.values()))}
    return {**given, "lr": each}


def _round(x: float) -> float:
    """Three significant digits: the range reads as what it is, an estimate."""
    return float(f"{x:.3g}") if x > 0 and math.isfinite(x) else x


def first_config(space: dict[str, Any]) -> dict[str, Any]:
    """The space's first grid point (a range's middle, a choice's first value) without
    ``lr``: the config ``hptune lr-find`` sweeps the LR on."""
    from hptune.space import Space

    config = Space(with_lr(space, LR_AUTO_CHECKED_AS)).grid(n_points=1)[0]
    config.pop("lr", None)
    return config


def _configs_per_optimizer(space: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """One config per optimizer the space offers: :func:`first_config`, with the branch of
    a conditional ``optimizer`` set to each branch in turn."""
    from hptune.space import Conditional

    optimizer = _optimizer_choice(space)
    if optimizer is None:
        config = first_config(space)
        named = config.get("optimizer")
        name = named.get("name") if isinstance(named, dict) else named
        return {name if isinstance(name, str) else "default": config}
    return {
        str(branch): first_config(
            {**space, "optimizer": Conditional({branch: optimizer.branches[branch]})}
        )
        for branch in optimizer.names
    }


def _optimizer_choice(space: dict[str, Any]) -> Any:
    """The space's conditional ``optimizer`` (a :class:`~hptune.space.Conditional`), or
    None when it has none."""
    from hptune.space import Conditional, Space

    optimizer = dict(Space(with_lr(space, LR_AUTO_CHECKED_AS)).dimensions()).get("optimizer")
    return optimizer if isinstance(optimizer, Conditional) else None
