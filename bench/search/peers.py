"""The peers of the search-efficiency benchmark: Ray Tune (ASHA with random search, ASHA
with OptunaSearch) and Hyperopt TPE, each a method of :mod:`bench.search.protocol`.

Every peer searches the evaluator's hptune space (``evaluator.space``), translated to the
peer's own space format from ``Space.dimensions()`` (so any task's space reaches every peer), and
translates each config it samples back to hptune's form (``{"optimizer": {"name": "sgd",
"momentum": 0.9}, ...}``) through ``space.sample(optuna.trial.FixedTrial(params))``, hptune's
own code, before handing it to the evaluator.

Rules shared by the peers, so that they differ from hptune only in how they search:

- The trial seed is a hash of the run's seed and the config (:func:`trial_seed`): a peer
  need not number its trials (Ray's trial ids are random) to be reproducible.
- The chosen config is the best (highest best-epoch validation accuracy) of the trials that
  ran the full ``max_epochs``, as Optuna's ``best_trial`` only counts complete trials; if
  none did, the best partial one. Only epochs the ledger counted are looked at.
- Errors other than a diverged run (``TrialDiverged``) end the run with that error.

========================= ==========================================================================
peer                      set-up
========================= ==========================================================================
``ray-asha-random``       Tune's ``BasicVariantGenerator(random_state=seed)`` + ASHA
``ray-asha-optuna``       Tune's ``OptunaSearch(seed=seed)`` (its default ``TPESampler``) + ASHA
``ray-asha-defaults``     Tune's ``BasicVariantGenerator(random_state=seed)`` + ASHA at **Tune's**
                          defaults (``grace_period=1``, ``reduction_factor=4``; rungs 1, 4, 16 of
                          52 epochs): Ray Tune as a user gets it, the LCBench peer
``hyperopt-tpe``          ``fmin(tpe.suggest, rstate=default_rng(seed))``; no pruning (Hyperopt has
                          none): every trial runs ``max_epochs``
========================= ==========================================================================

Ray Tune runs with hptune's ASHA options (:func:`asha_scheduler`; ``ray-asha-defaults``: with
Tune's own), **one trial at a time**
(every other method is sequential, and ASHA's decisions change with concurrency), with
``reuse_actors=True`` (Tune's fastest setting: no new worker process per trial), on a local
Ray of its own per run (:func:`local_ray`, 2 CPUs): its start-up, a few seconds, is part of
each run's wall-clock time. Tune runs the trainable in worker processes, so a Tune callback
counts each reported epoch in the ledger **in the driver**, and a Tune stopper ends the
experiment once the ledger's budget is spent.

Example:
    >>> from bench.search.peers import PEER_METHODS
    >>> sorted(PEER_METHODS)
    ['hyperopt-tpe', 'ray-asha-defaults', 'ray-asha-optuna', 'ray-asha-random']
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import math
import os
import shutil
import signal
import tempfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import optuna

from bench.search.protocol import BudgetExhausted, Evaluator, Ledger
from hptune.exceptions import ConfigError, HptuneError
from hptune.space import Choice, Conditional, Dimension, FloatDimension, IntDimension, Space
from hptune.trial import TrialDiverged

Method = Callable[[Evaluator, Ledger, int], dict[str, Any]]

#: The key under which a Hyperopt branch dict names its branch.
_BRANCH = "__branch__"


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
        self._diverged: set[Any] = set()

    def counted(self, key: Any, config: dict[str, Any], epoch: int, value: float) -> None:
        """Record one epoch the ledger has counted."""
        entry = self._trials.setdefault(key, [config, -math.inf, 0])
        entry[1], entry[2] = max(entry[1], value), epoch

    def diverged(self, key: Any) -> None:
        """Trial ``key`` diverged: never a full trial, whatever epochs it reported."""
        self._diverged.add(key)

    def chosen(self) -> dict[str, Any]:
        """The chosen config; ConfigError when no epoch was counted."""
        if not self._trials:
            raise ConfigError("no trial ran an epoch within the budget; give budget_epochs >= 1.")
        full = [
            t
            for k, t in self._trials.items()
            if t[2] >= self.max_epochs and k not in self._diverged
        ]
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
    from hyperopt import STATUS_FAIL, STATUS_OK, Trials, fmin, tpe

    check_budget(ledger)
    space = evaluator.space
    best = BestOfTrials(evaluator.max_epochs)
    numbers = itertools.count()

    def objective(sample: dict[str, Any]) -> dict[str, Any]:
        config = to_config(space, hyperopt_params(sample))
        key = next(numbers)
        counted = ledger.wrap(None, config)

        def report(epoch: int, value: float) -> bool:
            stop = counted(epoch, value)  # raises BudgetExhausted before recording
            best.counted(key, config, epoch, value)
            return stop

        try:
            value = evaluator.run(config, trial_seed(seed, config), report)
        except TrialDiverged:
            value = math.nan
        if not math.isfinite(value):
            # Hyperopt's way to record a failed evaluation (TPE learns only from "ok" ones),
            # as the Optuna methods record a diverged trial FAILED.
            best.diverged(key)
            return {"status": STATUS_FAIL}
        return {"loss": -value, "status": STATUS_OK}

    # Each trial spends >= 1 epoch, so the budget, not max_evals, ends the search.
    max_evals = ledger.budget_epochs - ledger.spent + 1
    # fmin catches only Exception, so the BaseException reaches us unchanged.
    with contextlib.suppress(BudgetExhausted):
        fmin(
            objective,
            hyperopt_space(space),
            algo=tpe.suggest,
            max_evals=max_evals,
            trials=Trials(),
            rstate=np.random.default_rng(seed),
            show_progressbar=False,
        )
    return best.chosen()


# -- Ray Tune ---------------------------------------------------------------------------------

#: Ray's token authentication is for shared clusters; a throwaway local one needs none.
#: Tune's new console output prints its experiment table even at ``verbose=0``.
_RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_AIR_NEW_OUTPUT": "0"}
_REPO_ROOT = Path(__file__).resolve().parents[2]


def ray_space(space: Space) -> dict[str, Any]:
    """Ray Tune's ``param_space`` for random search: one flat domain per parameter, every
    branch's included. Tune cannot nest domains inside ``tune.choice``; drawing all branch
    parameters and ignoring those of the branches not chosen (:func:`to_config`) draws
    configs from the same distribution."""
    return {name: _ray_dimension(name, dim) for name, dim in space.dimensions()}


def _ray_dimension(name: str, dim: Dimension) -> Any:
    from ray import tune

    if isinstance(dim, Conditional):
        return tune.choice(list(dim.names))
    if isinstance(dim, Choice):
        return tune.choice(list(dim.values))
    if dim.low == dim.high:
        return dim.low
    if isinstance(dim, FloatDimension):
        return (tune.loguniform if dim.log else tune.uniform)(dim.low, dim.high)
    if isinstance(dim, IntDimension):  # Tune's upper bound is exclusive, hptune's inclusive
        return (tune.lograndint if dim.log else tune.randint)(dim.low, dim.high + 1)
    raise ConfigError(f"parameter {name!r}: no Ray Tune form for {dim!r}.")


class OptunaDefineByRun:
    """``OptunaSearch``'s define-by-run space: hptune's own ``space.sample(trial)``, so the
    Optuna distributions and conditional branches are exactly hptune's.

    Args:
        space: The hptune space.
    """

    def __init__(self, space: Space) -> None:
        self.space = space

    def __call__(self, trial: optuna.Trial) -> None:
        self.space.sample(trial)  # Tune takes the suggested parameters, not the config


def _ray_trainable(config: dict[str, Any], evaluator: Evaluator, space: Space, seed: int) -> None:
    """Runs in a Tune worker: hptune's config for Tune's flat one, epochs reported to Tune."""
    from ray import tune

    hp_config = to_config(space, config)

    def report(epoch: int, value: float) -> bool:
        tune.report({"val_accuracy": value, "epoch": epoch})
        return False  # ASHA and the budget stop a trial through Tune, not through this answer

    # A diverged run just ends, as a user's training function would: Tune (and OptunaSearch)
    # keep its last reported accuracy, and an error would only add a traceback to the log.
    with contextlib.suppress(TrialDiverged):
        evaluator.run(hp_config, trial_seed(seed, hp_config), report)


def _ledger_callback(ledger: Ledger, space: Space, best: BestOfTrials) -> Any:
    from ray import tune

    class LedgerCallback(tune.Callback):
        """Counts in the driver every epoch a Tune worker reports (the ledger lives here),
        and notes when the budget is spent; Tune skips callbacks for its duplicate final
        result, so each epoch is counted once."""

        def __init__(self) -> None:
            self.exhausted = False
            self._reports: dict[str, tuple[dict[str, Any], Callable[[int, float], bool]]] = {}

        def on_trial_result(
            self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
        ) -> None:
            if self.exhausted:
                return
            if trial.trial_id not in self._reports:
                config = to_config(space, trial.config)
                self._reports[trial.trial_id] = (config, ledger.wrap(None, config))
            config, counted = self._reports[trial.trial_id]
            epoch, value = int(result["epoch"]), float(result["val_accuracy"])
            try:
                counted(epoch, value)
            except BudgetExhausted:
                self.exhausted = True  # raising here would crash Tune; the stopper ends it
                return
            best.counted(trial.trial_id, config, epoch, value)

    return LedgerCallback()


def _budget_stopper(callback: Any) -> Any:
    from ray import tune

    class BudgetStopper(tune.Stopper):
        """Stops every trial and the experiment once the ledger's budget is spent."""

        def __call__(self, trial_id: str, result: dict) -> bool:
            return callback.exhausted

        def stop_all(self) -> bool:
            return callback.exhausted

    return BudgetStopper()


def asha_scheduler(max_epochs: int, tune_defaults: bool = False) -> Any:
    """Tune's ``AsyncHyperBandScheduler`` (ASHA, Li et al. 2018, arXiv 1810.05934) with
    hptune's ``asha`` options: ``reduction_factor=3``, first rung at
    ``max(1, (max_epochs - 1) // 9)`` epochs (Tune's ``grace_period``), one bracket; with
    ``tune_defaults``, Tune's own: ``grace_period=1``, ``reduction_factor=4``, one bracket
    (rungs at 1, 4, 16 epochs of 52). ``max_t`` is ``max_epochs`` either way (a trial ends
    there; Tune's default of 100 would add no rung below 52)."""
    from ray.tune.schedulers import AsyncHyperBandScheduler

    if tune_defaults:
        return AsyncHyperBandScheduler(time_attr="epoch", max_t=max_epochs)
    return AsyncHyperBandScheduler(
        time_attr="epoch",
        max_t=max_epochs,
        grace_period=max(1, (max_epochs - 1) // 3**2),
        reduction_factor=3,
        brackets=1,
    )


@contextlib.contextmanager
def local_ray() -> Iterator[str]:
    """A local Ray of its own (2 CPUs, no dashboard) whose files live in a temporary
    directory, yielded and removed afterwards; Ray is shut down on the way out."""
    import ray

    if ray.is_initialized():
        raise HptuneError(
            "Ray is already initialised in this process; the Ray Tune peers start and stop "
            "a local Ray of their own: call ray.shutdown() first."
        )
    # A short path: Ray's Unix socket paths inside it must stay under 108 characters.
    temp_dir = tempfile.mkdtemp(prefix="hptune-peer-ray-")
    # Workers inherit this environment; PYTHONPATH lets them import the trainable and the
    # evaluator's class, which Ray pickles by reference.
    path = os.pathsep.join([str(_REPO_ROOT), os.getcwd(), os.environ.get("PYTHONPATH", "")])
    env = {**_RAY_ENV, "PYTHONPATH": path}
    saved = {key: os.environ.get(key) for key in env}
    # Ray Tune installs its own SIGINT handler and leaves it behind after the run; restore
    # ours so Ctrl-C (and hptune's driver) behave as before in this process.
    sigint = signal.getsignal(signal.SIGINT)
    os.environ.update(env)
    try:
        ray.init(
            address="local",
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.WARNING,
            _temp_dir=temp_dir,
        )
        yield temp_dir
    finally:
        ray.shutdown()
        signal.signal(signal.SIGINT, sigint)
        shutil.rmtree(temp_dir, ignore_errors=True)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _search_alg(searcher: str, space: Space, seed: int, max_concurrent_trials: int) -> tuple:
    """``(search_alg, param_space, max_concurrent_trials for TuneConfig)``."""
    from ray.tune.search.basic_variant import BasicVariantGenerator
    from ray.tune.search.optuna import OptunaSearch

    if searcher == "random":
        # Tune ignores max_concurrent_trials for this generator, which takes its own limit.
        generator = BasicVariantGenerator(max_concurrent=max_concurrent_trials, random_state=seed)
        return generator, ray_space(space), None
    if searcher == "optuna":
        # metric and mode here too: the concurrency limiter Tune wraps it in does not pass
        # TuneConfig's on.
        search = OptunaSearch(
            space=OptunaDefineByRun(space), metric="val_accuracy", mode="max", seed=seed
        )
        return search, None, max_concurrent_trials
    raise ConfigError(f"searcher must be 'random' or 'optuna', got {searcher!r}.")


def _tuner(
    evaluator: Evaluator, ledger: Ledger, seed: int, space: Space, search: tuple, callback: Any,
    storage_path: str, tune_defaults: bool,
) -> Any:  # fmt: skip
    from ray import tune

    search_alg, param_space, limit = search
    return tune.Tuner(
        # with_parameters puts the evaluator (a replay table, say) in Ray's object store once.
        tune.with_parameters(_ray_trainable, evaluator=evaluator, space=space, seed=seed),
        param_space=param_space,
        tune_config=tune.TuneConfig(
            metric="val_accuracy",
            mode="max",
            scheduler=asha_scheduler(evaluator.max_epochs, tune_defaults),
            search_alg=search_alg,
            # Each trial spends >= 1 epoch, so the budget ends the run first.
            num_samples=ledger.budget_epochs - ledger.spent + 1,
            max_concurrent_trials=limit,
            # Tune's fastest setting: no new worker process (and torch import) per trial.
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name="peer",
            storage_path=storage_path,
            stop=_budget_stopper(callback),
            callbacks=[callback],
            failure_config=tune.FailureConfig(fail_fast=True),
            verbose=0,
        ),
    )


def run_tune(
    evaluator: Evaluator, ledger: Ledger, seed: int, *, searcher: str, max_concurrent_trials: int,
    tune_defaults: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """One Ray Tune run with ASHA on a :func:`local_ray`; returns the chosen config.

    Args:
        searcher: ``"random"`` (``BasicVariantGenerator``) or ``"optuna"`` (``OptunaSearch``
            with its default ``TPESampler(seed=seed)``).
        max_concurrent_trials: Trials at once. 1 compares like with like: every other
            method runs one trial at a time, and ASHA's decisions depend on concurrency.
        tune_defaults: ASHA with Tune's own defaults instead of hptune's options
            (:func:`asha_scheduler`).

    Raises:
        HptuneError: A trial failed (other than by diverging); Tune stops at the first.
    """
    check_budget(ledger)
    space = evaluator.space
    search = _search_alg(searcher, space, seed, max_concurrent_trials)
    best = BestOfTrials(evaluator.max_epochs)
    callback = _ledger_callback(ledger, space, best)
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # OptunaSearch's "study created"
    try:
        with local_ray() as temp_dir:
            storage = os.path.join(temp_dir, "results")
            tuner = _tuner(evaluator, ledger, seed, space, search, callback, storage, tune_defaults)
            results = tuner.fit()
    finally:
        optuna.logging.set_verbosity(verbosity)
    if results.errors:
        raise HptuneError(f"a Ray Tune trial failed: {results.errors[0]!r}")
    return best.chosen()


def ray_asha_random(evaluator: Evaluator, ledger: Ledger, seed: int) -> dict[str, Any]:
    """Ray Tune: random search (``BasicVariantGenerator``) with ASHA, one trial at a time."""
    return run_tune(evaluator, ledger, seed, searcher="random", max_concurrent_trials=1)


def ray_asha_optuna(evaluator: Evaluator, ledger: Ledger, seed: int) -> dict[str, Any]:
    """Ray Tune: ``OptunaSearch`` (Optuna's TPE) with ASHA, one trial at a time."""
    return run_tune(evaluator, ledger, seed, searcher="optuna", max_concurrent_trials=1)


def ray_asha_defaults(evaluator: Evaluator, ledger: Ledger, seed: int) -> dict[str, Any]:
    """Ray Tune as it comes: random search with ASHA at Tune's defaults (grace period 1,
    reduction factor 4), one trial at a time; the LCBench peer."""
    return run_tune(
        evaluator, ledger, seed, searcher="random", max_concurrent_trials=1, tune_defaults=True
    )


PEER_METHODS: dict[str, Method] = {
    "ray-asha-random": ray_asha_random,
    "ray-asha-optuna": ray_asha_optuna,
    "ray-asha-defaults": ray_asha_defaults,
    "hyperopt-tpe": hyperopt_tpe,
}
