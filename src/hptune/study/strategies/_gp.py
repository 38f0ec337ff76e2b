"""Gaussian-process Bayesian optimization, on Optuna's GPSampler."""

from __future__ import annotations

import warnings

import optuna
from optuna.samplers import BaseSampler

from hptune._checks import Bool, Int
from hptune.study import _records
from hptune.study.strategies._base import Strategy, _require


class GPStrategy(Strategy):
    """Gaussian-process Bayesian optimization.

    Args:
        n_startup_trials: Random trials before the GP is fitted (default 10).
        deterministic_objective: The objective has no noise (default False).
    """

    name = "gp"
    option_rules = {"n_startup_trials": Int(low=0), "deterministic_objective": Bool()}

    def create_sampler(self, seed: int, n_existing_trials: int) -> BaseSampler:
        _require("scipy", self.name)
        sampler_seed = _records.derive_sampler_seed(seed, n_existing_trials)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.GPSampler(
                seed=sampler_seed,
                independent_sampler=optuna.samplers.RandomSampler(seed=sampler_seed + 1),
                warn_independent_sampling=False,
                **self.options,
            )
