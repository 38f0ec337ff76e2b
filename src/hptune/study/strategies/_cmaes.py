"""CMA-ES over the numeric dimensions every trial has (Hansen 2016, arXiv 1604.00772)."""

from __future__ import annotations

import warnings

import optuna
from optuna.samplers import BaseSampler

from hptune._checks import Bool, Int, optional
from hptune.study import _records
from hptune.study.strategies._base import Strategy, _require
from hptune.study.strategies._tpe import tpe_sampler


class CmaEsStrategy(Strategy):
    """CMA-ES over the numeric dimensions every trial has.

    Args:
        n_startup_trials: Trials drawn by the independent sampler first (default 1).
        popsize: Population size (default: CMA-ES's ``4 + 3 ln(d)``).
        use_separable_cma: Diagonal covariance, for many dimensions (default False).
        with_margin: CMA-ES with margin for integer dimensions (default False).
    """

    name = "cmaes"
    option_rules = {
        "n_startup_trials": Int(low=0),
        "popsize": optional(Int(low=1)),
        "use_separable_cma": Bool(),
        "with_margin": Bool(),
    }

    def create_sampler(self, seed: int, n_existing_trials: int) -> BaseSampler:
        _require("cmaes", self.name)
        sampler_seed = _records.derive_sampler_seed(seed, n_existing_trials)
        options = dict(self.options)
        options.setdefault("n_startup_trials", 1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.CmaEsSampler(
                seed=sampler_seed,
                independent_sampler=tpe_sampler(sampler_seed + 1),
                # Choices and conditional dimensions always fall back to the independent
                # sampler; saying so at every trial is noise, not news.
                warn_independent_sampling=False,
                **options,
            )
