"""Scrambled Sobol points over the numeric dimensions (Sobol 1967; Owen 1998)."""

from __future__ import annotations

import warnings

import optuna
from optuna.samplers import BaseSampler

from hptune._checks import Bool
from hptune.study import _records
from hptune.study.strategies._base import Strategy


class SobolStrategy(Strategy):
    """Scrambled Sobol points over the numeric dimensions.

    Args:
        scramble: Owen scrambling (default True); unscrambled Sobol starts at the corner of
            the space.
    """

    name = "sobol"
    option_rules = {"scramble": Bool()}

    def create_sampler(self, seed: int, n_existing_trials: int) -> BaseSampler:
        # The QMC sequence is indexed through the storage, so its own seed must be the study
        # seed in every session; only the fallback sampler is re-seeded on resume.
        fallback = optuna.samplers.RandomSampler(
            seed=_records.derive_sampler_seed(seed, n_existing_trials)
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.QMCSampler(
                qmc_type="sobol",
                scramble=self.option("scramble", True),
                seed=seed,
                independent_sampler=fallback,
                warn_asynchronous_seeding=False,
                warn_independent_sampling=False,
            )
