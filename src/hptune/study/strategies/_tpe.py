"""Multivariate, grouped TPE (Bergstra et al. 2011; Falkner et al. 2018), and the TPE sampler
other strategies build on."""

from __future__ import annotations

import warnings

import optuna
from optuna.samplers import BaseSampler

from hptune._checks import Int
from hptune.study import _records
from hptune.study.strategies._base import Strategy


class TPEStrategy(Strategy):
    """Multivariate, grouped TPE.

    Args:
        n_startup_trials: Random trials before TPE models the results (default 10).
        n_ei_candidates: Candidates scored per proposal (default 24).
    """

    name = "tpe"
    option_rules = {"n_startup_trials": Int(low=0), "n_ei_candidates": Int(low=1)}

    def create_sampler(self, seed: int, n_existing_trials: int) -> BaseSampler:
        return tpe_sampler(
            _records.derive_sampler_seed(seed, n_existing_trials),
            n_startup_trials=self.option("n_startup_trials", 10),
            n_ei_candidates=self.option("n_ei_candidates", 24),
        )


def tpe_sampler(seed: int, n_startup_trials: int = 10, n_ei_candidates: int = 24) -> BaseSampler:
    """hptune's TPE: multivariate and grouped (conditional spaces), constant liar (parallel
    workers do not all propose the same point), no warnings about conditional dimensions."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(
            seed=seed,
            n_startup_trials=n_startup_trials,
            n_ei_candidates=n_ei_candidates,
            multivariate=True,
            group=True,
            constant_liar=True,
        )
