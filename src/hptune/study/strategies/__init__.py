"""Strategies: where the next trial goes, by name, on Optuna's samplers.

The names are those of the CLI and the YAML spec (``strategy: tpe``):

============== ==============================================================================
name           what it runs
============== ==============================================================================
grid           every point of ``space.grid(n_points)`` exactly once (conditional branches
               expanded), in an order shuffled by the seed (a keyed Feistel permutation of
               the indices), never listed: a window of ``n_queued`` points waits in storage
               and is topped up as trials start; the study stops when the grid is
               exhausted. Optuna's ``GridSampler`` cannot do conditional spaces.
random         ``RandomSampler``: independent draws; log dimensions are drawn log-uniformly.
sobol          ``QMCSampler(qmc_type="sobol", scramble=True)`` (Owen-scrambled Sobol points,
               Sobol 1967; Owen 1998): even coverage of the numeric dimensions; choices and
               conditional dimensions are drawn at random.
tpe            ``TPESampler(multivariate=True, group=True)`` (Bergstra et al. 2011; Falkner et
               al. 2018 for the multivariate form): ``group=True`` models each conditional
               branch separately; the constant liar keeps parallel workers apart.
cmaes          ``CmaEsSampler`` (Hansen 2016, arXiv 1604.00772) over the numeric dimensions
               present in every trial; choices and conditional dimensions go to an
               independent TPE, silently.
gp             ``GPSampler``: Gaussian-process Bayesian optimization (needs scipy).
coarse-to-fine a coarse Sobol stage over the whole space, then TPE inside the box around the
               best trials (see ``hptune.study._coarse_to_fine``).
multi-fidelity for pruned searches (``pruner: asha``): one multivariate TPE fitted, BOHB-style,
               on the highest rung that enough trials reached, over all trials (no
               Hyperband brackets, no start-up trials per bracket), mixed with draws from
               the field's priors for lr, momentum, weight decay, batch size and warmup
               (``_priors``, each cited; a share that decays with evidence and drops
               to none while the best trial lies far from them), near the best trial,
               and uniform (PriorBand's mix).
============== ==============================================================================

Every sampler is seeded from the study's seed, so a study re-run with the same seed proposes
the same configs in the same order (sequentially; parallel workers finish in any order).

Each lives in a module of its own; the base class and the registry in ``_base``.

Example:
    >>> strategy = create_strategy("tpe", n_startup_trials=5)
    >>> sampler = strategy.create_sampler(seed=0, n_existing_trials=0)
    >>> type(sampler).__name__
    'TPESampler'
"""

from __future__ import annotations

from hptune.study.strategies._base import (
    Strategy,
    create_strategy,
    list_strategies,
    register_strategy,
)
from hptune.study.strategies._cmaes import CmaEsStrategy
from hptune.study.strategies._coarse_to_fine import CoarseToFineStrategy, RangeBoundaryWarning
from hptune.study.strategies._gp import GPStrategy
from hptune.study.strategies._grid import GRID_ATTR, GridStrategy
from hptune.study.strategies._multi_fidelity import MultiFidelityStrategy
from hptune.study.strategies._random import RandomStrategy
from hptune.study.strategies._sobol import SobolStrategy
from hptune.study.strategies._tpe import TPEStrategy, tpe_sampler

for _cls in (
    GridStrategy,
    RandomStrategy,
    SobolStrategy,
    TPEStrategy,
    CmaEsStrategy,
    GPStrategy,
    CoarseToFineStrategy,
    MultiFidelityStrategy,
):
    register_strategy(_cls.name, _cls)

__all__ = [
    "GRID_ATTR",
    "CmaEsStrategy",
    "CoarseToFineStrategy",
    "GPStrategy",
    "GridStrategy",
    "MultiFidelityStrategy",
    "RandomStrategy",
    "RangeBoundaryWarning",
    "SobolStrategy",
    "Strategy",
    "TPEStrategy",
    "create_strategy",
    "list_strategies",
    "register_strategy",
    "tpe_sampler",
]
