"""The one search space every method searches, on every task, and its replay-table grid.

The space covers what the issue asks for — a log-uniform LR, the effective batch size, weight
decay, the optimizer with its parameter, the scheduler with warmup — and is kept modest so a
replay table can cover it densely:

================ ====================================== =========================================
dimension        space                                  table levels (digits-mlp, mnist1d-mlp)
================ ====================================== =========================================
lr               loguniform(1e-4, 1e-1)                 7, half a decade apart
batch_size       choice(32, 64, 128)                    all 3
weight_decay     loguniform(1e-6, 1e-2)                 1e-6, 1e-4, 1e-2
warmup_epochs    choice(0, 2)                           both
optimizer        adam {beta1: uniform(0.8, 0.95)}       both branches; beta1 / momentum at
                 sgd {momentum: uniform(0.8, 0.95),     0.8 and 0.95
                 nesterov: true}
scheduler        cosine {} | plateau {factor 0.5,       both
                 patience 2}
================ ====================================== =========================================

That is 7 x 3 x 3 x 2 x 4 x 2 = 1008 table configs; ``mnist1d-cnn`` (about ten times slower
to train) has a coarser table of 4 x 3 x 2 x 2 x 2 x 2 = 192 (:data:`TABLE_LEVELS`).

**Snapping** (replay mode): a proposed config is mapped to the nearest table config. Every
categorical dimension (batch size, warmup, optimizer, scheduler) must match exactly; among
the table configs that match, the nearest in the numeric dimensions wins, each numeric value
normalized to [0, 1] over its space range (log10 for the log dimensions) and clipped there
first, so a weight decay of 0 (the seed's grid) counts as the range's low end, 1e-6.

Example:
    >>> key, point = features(table_configs("digits-mlp")[0])
    >>> key, [round(x, 3) for x in point]
    ((32, 0, 'adam', 'cosine'), [0.0, 0.0, 0.0])
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Any

from hptune.space import Space, choice, loguniform, uniform

#: Ranges of the numeric dimensions: (low, high, log).
LR_RANGE = (1e-4, 1e-1, True)
WD_RANGE = (1e-6, 1e-2, True)
PARAM_RANGE = (0.8, 0.95, False)  # adam's beta1, sgd's momentum

#: The plateau scheduler's options; constants, so the table need not cover them.
PLATEAU = {"factor": 0.5, "patience": 2}

#: Maximum epochs of one trial per task (the replay curves' length).
MAX_EPOCHS = {"digits-mlp": 20, "mnist1d-mlp": 20, "mnist1d-cnn": 20}

#: Per task: lr levels, weight-decay levels, optimizer-parameter levels of the table grid.
TABLE_LEVELS: dict[str, dict[str, tuple[float, ...]]] = {
    "digits-mlp": {
        "lr": tuple(10 ** (-4 + k / 2) for k in range(7)),
        "weight_decay": (1e-6, 1e-4, 1e-2),
        "param": (0.8, 0.95),
    },
    "mnist1d-cnn": {
        "lr": (1e-4, 1e-3, 1e-2, 1e-1),
        "weight_decay": (1e-5, 1e-3),
        "param": (0.9,),
    },
}
TABLE_LEVELS["mnist1d-mlp"] = TABLE_LEVELS["digits-mlp"]

#: Smaller tables for ``replay-build --quick`` (a partial build; RESULTS.md says when used).
QUICK_LEVELS: dict[str, tuple[float, ...]] = {
    "lr": (1e-4, 1e-3, 1e-2, 1e-1),
    "weight_decay": (1e-6, 1e-3),
    "param": (0.9,),
}

BATCH_SIZES = (32, 64, 128)
WARMUPS = (0, 2)
OPTIMIZERS = ("adam", "sgd")
SCHEDULERS = ("cosine", "plateau")


def search_space() -> dict[str, Any]:
    """The common space as an hptune space mapping (a fresh copy each call)."""
    return {
        "lr": loguniform(*LR_RANGE[:2]),
        "batch_size": choice(*BATCH_SIZES),
        "weight_decay": loguniform(*WD_RANGE[:2]),
        "warmup_epochs": choice(*WARMUPS),
        "optimizer": choice(
            {
                "adam": {"beta1": uniform(*PARAM_RANGE[:2])},
                "sgd": {"momentum": uniform(*PARAM_RANGE[:2]), "nesterov": True},
            }
        ),
        "scheduler": choice({"cosine": {}, "plateau": dict(PLATEAU)}),
    }


def make_config(
    lr: float, batch_size: int, weight_decay: float, warmup_epochs: int,
    optimizer: str, param: float, scheduler: str,
) -> dict[str, Any]:  # fmt: skip
    """A config of the space's shape (what ``Space.sample`` returns) from flat values."""
    opt: dict[str, Any] = (
        {"name": "adam", "beta1": param}
        if optimizer == "adam"
        else {"name": "sgd", "momentum": param, "nesterov": True}
    )
    sched: dict[str, Any] = {"name": scheduler, **(PLATEAU if scheduler == "plateau" else {})}
    return {
        "lr": lr, "batch_size": batch_size, "weight_decay": weight_decay,
        "warmup_epochs": warmup_epochs, "optimizer": opt, "scheduler": sched,
    }  # fmt: skip


def table_configs(task: str, quick: bool = False) -> list[dict[str, Any]]:
    """The replay table's grid for ``task``: every combination of its levels."""
    levels = QUICK_LEVELS if quick else TABLE_LEVELS[task]
    combos = itertools.product(
        levels["lr"], BATCH_SIZES, levels["weight_decay"], WARMUPS, OPTIMIZERS,
        levels["param"], SCHEDULERS,
    )  # fmt: skip
    return [make_config(*combo) for combo in combos]


def _unit(value: float, low: float, high: float, log: bool) -> float:
    """``value`` mapped to [0, 1] over ``[low, high]`` (log10 scale when ``log``), clipped."""
    value = min(max(float(value), low), high)
    if log:
        return (math.log10(value) - math.log10(low)) / (math.log10(high) - math.log10(low))
    return (value - low) / (high - low)


def features(config: Mapping[str, Any]) -> tuple[tuple[Any, ...], tuple[float, ...]]:
    """(categorical key, normalized numeric point) of a config, for snapping."""
    opt = config["optimizer"]
    param = opt.get("beta1", opt.get("momentum", 0.9))
    key = (
        int(config["batch_size"]),
        int(config.get("warmup_epochs", 0)),
        str(opt["name"]),
        str(config["scheduler"]["name"]),
    )
    point = (
        _unit(config["lr"], *LR_RANGE),
        _unit(config.get("weight_decay", 0.0), *WD_RANGE),
        _unit(param, *PARAM_RANGE),
    )
    return key, point


def space() -> Space:
    """The common space as a validated :class:`hptune.space.Space`."""
    return Space(search_space())
