"""The study engine: strategies and pruners on Optuna, the ask/tell driver, and records.

Example:
    >>> from hptune.space import loguniform
    >>> from hptune.study import create_study
    >>> study = create_study({"lr": loguniform(1e-4, 1e-1)}, storage=None,
    ...                      direction="minimize", strategy="tpe", seed=0)
    >>> study.optimize(lambda config, trial: abs(config["lr"] - 3e-3), n_trials=10)
    <StopReason.TRIALS: 'trials'>
    >>> study.best_trial.state
    'COMPLETE'
"""

from __future__ import annotations

from hptune.study._confirm import Confirm, Confirmation, ConfirmedConfig
from hptune.study._driver import StopReason
from hptune.study._helpers import grid_search, random_search
from hptune.study._records import (
    TrialRecord,
    capture_environment,
    config_hash,
    derive_sampler_seed,
    derive_trial_seed,
)
from hptune.study._study import DEFAULT_STORAGE, Study, create_study, load_study
from hptune.study._view import PenalizingSampler
from hptune.study.pruners import create_pruner, list_pruners, register_pruner
from hptune.study.strategies import (
    CoarseToFineStrategy,
    RangeBoundaryWarning,
    Strategy,
    create_strategy,
    list_strategies,
    register_strategy,
)
from hptune.trial import TrialDiverged

__all__ = [
    "DEFAULT_STORAGE",
    "CoarseToFineStrategy",
    "Confirm",
    "Confirmation",
    "ConfirmedConfig",
    "PenalizingSampler",
    "RangeBoundaryWarning",
    "StopReason",
    "Strategy",
    "Study",
    "TrialDiverged",
    "TrialRecord",
    "capture_environment",
    "config_hash",
    "create_pruner",
    "create_strategy",
    "create_study",
    "derive_sampler_seed",
    "derive_trial_seed",
    "grid_search",
    "list_pruners",
    "list_strategies",
    "load_study",
    "random_search",
    "register_pruner",
    "register_strategy",
]
