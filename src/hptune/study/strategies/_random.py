"""Random search: independent draws (log dimensions log-uniformly)."""

from __future__ import annotations

import optuna
from optuna.samplers import BaseSampler

from hptune.study import _records
from hptune.study.strategies._base import Strategy


class RandomStrategy(Strategy):
    """Independent random draws (log dimensions log-uniformly). No options."""

    name = "random"

    def create_sampler(self, seed: int, n_existing_trials: int) -> BaseSampler:
        return optuna.samplers.RandomSampler(
            seed=_records.derive_sampler_seed(seed, n_existing_trials)
        )
