"""DEHB as a peer: the ``dehb`` package itself, run its own way through ask and tell.

DEHB (Awad, Mallik & Hutter, "DEHB: Evolutionary Hyperband for Scalable, Robust and
Efficient Hyperparameter Optimization", IJCAI 2021, arXiv 2105.09821) runs Hyperband's
brackets and evolves one differential-evolution population per fidelity. It has no
continuation: every job trains a config **from scratch** to its fidelity, so a job of
fidelity ``f`` costs ``f`` epochs in the ledger (a promotion pays again for the epochs
below it), as DEHB's own papers count cost.

Set-up: DEHB's defaults (``eta=3``, ``mutation_factor=0.5``, ``crossover_prob=0.5``,
``strategy="rand1_bin"``, ``async_strategy="immediate"``), one worker (no Dask cluster),
``min_fidelity=1``, ``max_fidelity=max_epochs``. DEHB's fidelities are real numbers,
``max_epochs * eta**-k``; a job trains ``round(fidelity)`` epochs (at least 1): on 52
epochs that is 2, 6, 17 and 52. The value told to DEHB is the job's best validation
accuracy (negated: DEHB minimizes), as the Optuna methods' objectives return it; its cost
is the epochs trained. The chosen config follows the peers' rule
(:class:`bench.search.peers.BestOfTrials`: the best job that ran all ``max_epochs``).

Install: DEHB 0.1.2 (the newest) declares ``numpy<2``, which this project does not satisfy;
its code runs on numpy 2 and ConfigSpace 1.x (only ConfigSpace's deprecation warnings, which
this module silences). The ``bench`` extra holds its dependencies; install DEHB itself with
``pip install --no-deps dehb==0.1.2``.

Example:
    >>> from hptune.space import Space, choice, loguniform
    >>> cs, decode = configspace_of(Space({"lr": loguniform(1e-3, 1e-1), "bs": choice(8, 16)}))
    >>> sorted(cs)
    ['bs', 'lr']
"""

from __future__ import annotations

import contextlib
import itertools
import math
import tempfile
import warnings
from collections.abc import Callable, Mapping
from typing import Any

from bench.search.peers import BestOfTrials, check_budget, parents, to_config, trial_seed
from bench.search.protocol import BudgetExhausted, Evaluator, Ledger
from hptune.exceptions import ConfigError
from hptune.space import Choice, Conditional, FloatDimension, IntDimension, Space
from hptune.trial import TrialDiverged


def configspace_of(space: Space, seed: int | None = None) -> tuple[Any, Callable]:
    """``(ConfigurationSpace, decode)`` for ``space``: one hyperparameter per Optuna
    parameter name; a choice is categorical over the *indices* of its values (any value,
    None included, survives the round trip); a conditional is categorical over its branch
    names, and each branch parameter is active under an ``EqualsCondition`` on its owner.
    ``decode(configuration)`` gives hptune's config."""
    import ConfigSpace as CS

    cs = CS.ConfigurationSpace(seed=seed)
    choices: dict[str, tuple[Any, ...]] = {}
    for name, dim in space.dimensions():
        if isinstance(dim, Conditional):
            cs.add(CS.CategoricalHyperparameter(name, list(dim.names)))
        elif isinstance(dim, Choice):
            choices[name] = tuple(dim.values)
            cs.add(CS.CategoricalHyperparameter(name, list(range(len(dim.values)))))
        elif dim.low == dim.high:
            cs.add(CS.Constant(name, dim.low))
        elif isinstance(dim, FloatDimension):
            cs.add(CS.UniformFloatHyperparameter(name, dim.low, dim.high, log=dim.log))
        elif isinstance(dim, IntDimension):
            cs.add(CS.UniformIntegerHyperparameter(name, dim.low, dim.high, log=dim.log))
        else:
            raise ConfigError(f"parameter {name!r}: no ConfigSpace form for {dim!r}.")
    for name, owner in parents(space).items():
        if owner is not None:
            cs.add(CS.EqualsCondition(cs[name], cs[owner[0]], owner[1]))

    def decode(configuration: Mapping[str, Any]) -> dict[str, Any]:
        params = {
            name: choices[name][int(value)] if name in choices else value
            for name, value in dict(configuration).items()
        }
        return to_config(space, params)

    return cs, decode


def dehb(evaluator: Evaluator, ledger: Ledger, seed: int) -> dict[str, Any]:
    """DEHB with its defaults on ``evaluator``'s space until the ledger's budget is spent."""
    check_budget(ledger)
    best = BestOfTrials(evaluator.max_epochs)
    with contextlib.ExitStack() as stack:
        stack.enter_context(warnings.catch_warnings())
        warnings.simplefilter("ignore", DeprecationWarning)  # DEHB 0.1.2 on ConfigSpace 1.x
        out = stack.enter_context(tempfile.TemporaryDirectory(prefix="hptune-dehb-"))
        stack.callback(_remove_dehb_log_handlers)
        optimizer, decode = _create(evaluator, seed, out)
        with contextlib.suppress(BudgetExhausted):
            for number in itertools.count():
                _one_job(optimizer, decode, evaluator, ledger, seed, best, number)
    return best.chosen()


def _create(evaluator: Evaluator, seed: int, output_path: str) -> tuple[Any, Callable]:
    """A DEHB optimizer on ``evaluator``'s space, and its config decoder."""
    from dehb import DEHB

    cs, decode = configspace_of(evaluator.space, seed)
    optimizer = DEHB(
        cs=cs,
        min_fidelity=1,
        max_fidelity=evaluator.max_epochs,
        n_workers=1,
        seed=seed,
        output_path=output_path,  # DEHB writes its log there: a directory of ours, removed
        save_freq=None,  # no state files per incumbent
        log_level="WARNING",
    )
    return optimizer, decode


def _one_job(
    optimizer: Any, decode: Callable, evaluator: Evaluator, ledger: Ledger, seed: int,
    best: BestOfTrials, number: int,
) -> None:  # fmt: skip
    """Ask one job, train it from scratch to its fidelity through the ledger, tell the result."""
    job = optimizer.ask()
    epochs = max(1, round(job["fidelity"]))
    config = decode(job["config"])
    # A full-fidelity job is not stopped but runs to its end, where a diverged run raises.
    stop_at = epochs if epochs < evaluator.max_epochs else None
    counted = ledger.wrap(lambda epoch, value: epoch == stop_at, config)

    def report(epoch: int, value: float) -> bool:
        stop = counted(epoch, value)  # raises BudgetExhausted before recording
        best.counted(number, config, epoch, value)
        return stop

    try:
        value = evaluator.run(config, trial_seed(seed, config), report)
    except TrialDiverged:
        value = math.nan
    if not math.isfinite(value):
        best.diverged(number)
    # DEHB minimizes; a diverged job is the worst fitness there is.
    fitness = -value if math.isfinite(value) else math.inf
    optimizer.tell(job, {"fitness": fitness, "cost": epochs})


def _remove_dehb_log_handlers() -> None:
    """DEHB adds a loguru file handler (with a writer thread) per instance and never removes
    it; without this, every run in a process would leave one behind."""
    with contextlib.suppress(ImportError):
        from loguru import logger

        logger.remove()
