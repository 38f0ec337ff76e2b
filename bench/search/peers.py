"""The peers of the search-efficiency benchmark: Ray Tune (ASHA with random search, ASHA
with OptunaSearch) and Hyperopt TPE, each a method of :mod:`bench.search.protocol`.

Every peer searches the harness's hptune space, translated to the peer's own space format
from ``Space.dimensions()`` (so a change of the common space reaches every peer), and
translates each config it samples back to hptune's form (``{"optimizer": {"name": "sgd",
"momentum": 0.9}, ...}``) through ``space.sample(optuna.trial.FixedTrial(params))``, hptune's
own code, before handing it to the evaluator.

Rules shared by the peers, so that they differ from hptune only in how they search:

- The trial seed is a hash of the run's seed and the config (:func:`trial_seed`): a peer
  need not number its trials (Ray's trial ids are random) to be reproducible.
- The chosen config is the best (highest best-epoch validation accuracy) of the trials that
  ran the full ``max_epochs``, as Optuna's ``best_trial`` only counts complete trials; if
  none did, the best partial one. Only epochs the ledger counted are looked at.

Example:
    >>> from bench.search.peers import PEER_METHODS
    >>> sorted(PEER_METHODS)
    ['hyperopt-tpe', 'ray-asha-optuna', 'ray-asha-random']
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Callable, Mapping
from typing import Any

import optuna

from bench.search.protocol import BudgetExhausted, Evaluator, Ledger
from hptune.exceptions import ConfigError
from hptune.space import Choice, Conditional, Dimension, FloatDimension, IntDimension, Space
from hptune.space import choice, loguniform, randint, uniform

Method = Callable[[Evaluator, Ledger, int], dict[str, Any]]

#: The space assumed until ``bench/search/space.py`` provides the harness's one.
ASSUMED_SPACE: dict[str, Any] = {
    "lr": loguniform(1e-4, 1e-1),
    "batch_size": choice(32, 64, 128),
    "weight_decay": loguniform(1e-6, 1e-2),
    "warmup_epochs": randint(0, 3),
    "optimizer": choice(
        {"adam": {"beta1": uniform(0.85, 0.95)}, "sgd": {"momentum": uniform(0.8, 0.99)}}
    ),
    "scheduler": choice({"cosine": {}, "plateau": {}, "constant": {}}),
}
#: The key under which a Hyperopt branch dict names its branch.
_BRANCH = "__branch__"


def harness_space(evaluator: Evaluator) -> Space:
    """The space the harness searches for ``evaluator``'s task: the evaluator's ``space``
    attribute if it has one, else ``bench.search.space.SPACE``, else :data:`ASSUMED_SPACE`."""
    space = getattr(evaluator, "space", None)
    if space is None:
        try:
            from bench.search.space import SPACE as space  # noqa: N811
        except ImportError:
            space = ASSUMED_SPACE
    return Space(space)


def trial_seed(seed: int, config: Mapping[str, Any]) -> int:
    """A seed for one trial, fixed by the run's ``seed`` and the config (crc32 of its
    sorted JSON), in ``[0, 2**31)``."""
    text = json.dumps(config, sort_keys=True, default=str)
    return (seed * 1_000_003 + zlib.crc32(text.encode())) % 2**31


def to_config(space: Space, params: Mapping[str, Any]) -> dict[str, Any]:
    """hptune's config for flat parameters named as Optuna's (``optimizer``,
    ``optimizer.sgd.momentum``); parameters of branches not chosen are ignored, numbers are
    clipped into their bounds (a peer's rounding may step just outside)."""
    fixed = {}
    for name, dim in space.dimensions():
        if name in params:
            fixed[name] = _clip(dim, params[name])
    return space.sample(optuna.trial.FixedTrial(fixed))


def _clip(dim: Dimension, value: Any) -> Any:
    if isinstance(dim, IntDimension):
        return int(min(max(round(value), dim.low), dim.high))
    if isinstance(dim, FloatDimension):
        return float(min(max(value, dim.low), dim.high))
    return value


def parents(space: Space) -> dict[str, tuple[str, str] | None]:
    """For each parameter, the ``(conditional, branch)`` it belongs to, None at top level."""
    out: dict[str, tuple[str, str] | None] = {}
    conditionals: list[tuple[str, Conditional]] = []
    for name, dim in space.dimensions():
        # The longest matching prefix is the innermost branch (a conditional precedes its branches).
        owner = [(c, b) for c, d in conditionals for b in d.names if name.startswith(f"{c}.{b}.")]
        out[name] = max(owner, key=lambda cb: len(cb[0])) if owner else None
        if isinstance(dim, Conditional):
            conditionals.append((name, dim))
    return out


class BestOfTrials:
    """Tracks what the ledger counted per trial and picks the chosen config (module rules).

    Args:
        max_epochs: Epochs of a full trial.
    """

    def __init__(self, max_epochs: int) -> None:
        self.max_epochs = max_epochs
        self._trials: dict[Any, list[Any]] = {}  # key -> [config, best value, last epoch]

    def counted(self, key: Any, config: dict[str, Any], epoch: int, value: float) -> None:
        """Record one epoch the ledger has counted."""
        entry = self._trials.setdefault(key, [config, -math.inf, 0])
        entry[1], entry[2] = max(entry[1], value), epoch

    def chosen(self) -> dict[str, Any]:
        """The chosen config; ConfigError when no epoch was counted."""
        if not self._trials:
            raise ConfigError("no trial ran an epoch within the budget; give budget_epochs >= 1.")
        full = [t for t in self._trials.values() if t[2] >= self.max_epochs]
        return max(full or self._trials.values(), key=lambda t: t[1])[0]


def check_budget(ledger: Ledger) -> None:
    """Refuse a ledger with nothing to spend (no trial could run an epoch)."""
    if ledger.budget_epochs - ledger.spent < 1:
        raise ConfigError(
            f"ledger has {ledger.budget_epochs - ledger.spent} epochs left "
            f"(budget_epochs={ledger.budget_epochs}, spent={ledger.spent}); a peer needs >= 1."
        )


# -- Hyperopt ---------------------------------------------------------------------------------


def hyperopt_space(space: Space) -> dict[str, Any]:
    """The Hyperopt space of ``space``: a dict of ``hp`` expressions labelled with Optuna's
    parameter names; a conditional is ``hp.choice`` over one dict per branch (its name under
    ``"__branch__"``, its parameters beside it), Hyperopt's native nested form."""
    from hyperopt import hp

    owner = parents(space)
    dims = dict(space.dimensions())

    def tree(key: tuple[str, str] | None) -> dict[str, Any]:
        return {name: expr(name, dims[name]) for name in dims if owner[name] == key}

    def expr(name: str, dim: Dimension) -> Any:
        if isinstance(dim, Conditional):
            return hp.choice(name, [{_BRANCH: b, **tree((name, b))} for b in dim.names])
        return _hp_dimension(name, dim)

    return tree(None)


def _hp_dimension(name: str, dim: Dimension) -> Any:
    from hyperopt import hp

    if isinstance(dim, Choice):
        return hp.choice(name, list(dim.values))
    if dim.low == dim.high:
        return dim.low
    if isinstance(dim, FloatDimension):
        if dim.log:
            return hp.loguniform(name, math.log(dim.low), math.log(dim.high))
        return hp.uniform(name, dim.low, dim.high)
    if isinstance(dim, IntDimension):
        # Half a step beyond each bound gives every integer the same mass after rounding,
        # and keeps the dimension ordered for TPE (hp.randint is unordered to it).
        if dim.log:
            return hp.qloguniform(name, math.log(dim.low - 0.5), math.log(dim.high + 0.5), 1)
        return hp.quniform(name, dim.low - 0.5, dim.high + 0.5, 1)
    raise ConfigError(f"parameter {name!r}: no Hyperopt form for {dim!r}.")


def hyperopt_params(sample: Mapping[str, Any]) -> dict[str, Any]:
    """Flat Optuna-named parameters of one Hyperopt sample (branch dicts unfolded)."""
    out: dict[str, Any] = {}
    for key, value in sample.items():
        if isinstance(value, Mapping) and _BRANCH in value:
            out[key] = value[_BRANCH]
            out.update(hyperopt_params({k: v for k, v in value.items() if k != _BRANCH}))
        elif key != _BRANCH:
            out[key] = value
    return out


def hyperopt_tpe(evaluator: Evaluator, ledger: Ledger, seed: int) -> dict[str, Any]:
    """Hyperopt's TPE (Bergstra et al. 2011, "Algorithms for Hyper-Parameter Optimization",
    NeurIPS) with its defaults. Hyperopt has no pruning: every trial runs ``max_epochs``."""
    import numpy as np
    from hyperopt import STATUS_OK, Trials, fmin, tpe

    check_budget(ledger)
    space = harness_space(evaluator)
    best = BestOfTrials(evaluator.max_epochs)

    def objective(sample: dict[str, Any]) -> dict[str, Any]:
        config = to_config(space, hyperopt_params(sample))
        key = len(best._trials)
        counted = ledger.wrap(None, config)

        def report(epoch: int, value: float) -> bool:
            stop = counted(epoch, value)  # raises BudgetExhausted before recording
            best.counted(key, config, epoch, value)
            return stop

        value = evaluator.run(config, trial_seed(seed, config), report)
        return {"loss": -value, "status": STATUS_OK}

    # Each trial spends >= 1 epoch, so the budget, not max_evals, ends the search.
    max_evals = ledger.budget_epochs - ledger.spent + 1
    try:
        fmin(
            objective,
            hyperopt_space(space),
            algo=tpe.suggest,
            max_evals=max_evals,
            trials=Trials(),
            rstate=np.random.default_rng(seed),
            show_progressbar=False,
        )
    except BudgetExhausted:
        # fmin catches only Exception, so the BaseException reaches us unchanged.
        pass
    return best.chosen()


PEER_METHODS: dict[str, Method] = {"hyperopt-tpe": hyperopt_tpe}
