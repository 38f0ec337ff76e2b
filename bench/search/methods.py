"""The search methods compared, by name: ``method(evaluator, ledger, seed) -> chosen config``.

=========================== ================================================================
name                        what runs
=========================== ================================================================
hptune-default              hptune's defaults (``hptune._defaults``), the pair its main job
                            (README, ``examples/mnist1d.yaml``) uses: since 2026-12-05
                            ``strategy="multi-fidelity"`` (TPE on the highest rung with enough
                            trials, over all trials, mixed with draws from the field's priors,
                            near the best trial and uniform; the first trial at the priors'
                            modes) with hptune's ``asha`` pruner at its defaults (on 52 epochs
                            rungs at 5, 15, 45)
hptune-tpe-hyperband        ``strategy="tpe", pruner="hyperband"``: the default before, from
                            session 2 (when the pruner ablation below had Hyperband ahead of or
                            level with ASHA under TPE) to 2026-12-05
hptune-tpe-nopruner         hptune's TPE without a pruner (isolates what pruning adds)
hptune-tpe-<pruner>         hptune's TPE with each other pruner: ``asha``, ``median``, and
                            ``asha-late`` (ASHA with ``min_resource`` a quarter of the
                            epochs: fewer, later rungs); the pruner ablation
hptune-<strategy>           every other hptune strategy (grid, random, sobol, cmaes, gp,
                            coarse-to-fine) with **Hyperband**, the main job's pruner when
                            they were added, so the strategies differ in one thing only. Grid uses
                            ``n_points=3`` (648 points, shuffled by the study seed).
hptune-multi-fidelity-...   the default's ablations: ``-no-priors`` (``field_priors=False``) and
                            ``-wrong-prior`` (lr 1e-4, momentum 0.1, weight decay 0.1, batch
                            512 as the user's priors); run with ``--no-write``
optuna-tpe                  Optuna's defaults: ``TPESampler(seed=seed)``, no pruner
optuna-tpe-hyperband        ``TPESampler(seed=seed)`` + ``HyperbandPruner()`` with Optuna's
                            defaults (``min_resource=1``, ``max_resource="auto"``,
                            ``reduction_factor=3``; on 52 epochs 4 brackets, rungs from
                            1, 3, 9, 27). The study is named by the seed, so its brackets
                            reproduce (Optuna hashes the name)
optuna-random-asha          ``RandomSampler(seed=seed)`` + ``SuccessiveHalvingPruner()`` at
                            Optuna's defaults (``min_resource="auto"``: the first complete
                            trial's steps / 100, at least 1; ``reduction_factor=4``; on 52
                            epochs rungs at 1, 4, 16)
dehb                        the ``dehb`` package run its own way (``bench/search/peers_dehb.py``),
                            when installed
seed-random                 the seed article's ``random_search``: ``random.uniform`` over each
                            numeric range (the LR and weight decay on a **linear** scale),
                            ``random.choice`` over each choice; no pruning
seed-grid                   the seed article's 3x3x3 grid, in its order: lr {0.1, 0.01,
                            0.001} x batch {32, 64, 128} x weight decay {0, 0.001, 0.01};
                            adam (beta1 0.9), no warmup, plateau scheduler (the article's
                            ReduceLROnPlateau); no pruning
=========================== ================================================================

hptune and Optuna methods sample configs from the evaluator's space (``evaluator.space``,
hptune's ``Space.sample`` on the Optuna trial), so every method searches the same space on
a task: the common one (:func:`bench.search.space.space`) on the replay and live tasks,
LCBench's own on LCBench. The seed article's two searches are written for the common space
only and refuse any other.
Peers (Ray Tune, Hyperopt) come from ``bench/search/peers.py`` (``PEER_METHODS``) when it
imports; :data:`UNAVAILABLE` says why when it does not.

hptune's ``trial.report`` raises ``TrialPruned`` instead of returning True: the report handed
to the evaluator catches it, answers True (the evaluator stops training), and the objective
raises it again once the evaluator returns, so the trial is recorded PRUNED as in a live run.
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import logging
import random
from collections.abc import Callable
from typing import Any

import optuna

from bench.search.protocol import BudgetExhausted, Evaluator, Ledger
from bench.search.space import BATCH_SIZES, OPTIMIZERS, SCHEDULERS, WARMUPS, make_config, space
from hptune._defaults import DEFAULT_PRUNER, DEFAULT_STRATEGY
from hptune.exceptions import ConfigError

Method = Callable[[Evaluator, Ledger, int], dict[str, Any]]

METHODS: dict[str, Method] = {}
#: Methods that could not be loaded, with the reason.
UNAVAILABLE: dict[str, str] = {}


def register(name: str) -> Callable[[Method], Method]:
    def add(fn: Method) -> Method:
        METHODS[name] = fn
        return fn

    return add


def get_method(name: str) -> Method:
    """The method registered as ``name``; the error lists the valid names."""
    if name not in METHODS:
        raise KeyError(f"unknown method {name!r}; valid: {', '.join(METHODS)}.")
    return METHODS[name]


def _quiet() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("hptune").setLevel(logging.WARNING)


def hptune_method(
    strategy: str, pruner: str,
    pruner_options: Callable[[int], dict[str, Any]] | None = None,
    **strategy_options: Any,
) -> Method:  # fmt: skip
    """A method that runs ``hptune.create_study(storage=None, ...)`` + ``study.optimize``;
    ``pruner_options(max_epochs)`` gives the pruner's options (default: hptune's)."""
    from hptune.study import create_study
    from hptune.trial import TrialPruned

    def method(evaluator: Evaluator, ledger: Ledger, seed: int) -> dict[str, Any]:
        _quiet()
        study = create_study(
            evaluator.space, storage=None, strategy=strategy, pruner=pruner, seed=seed,
            epochs=evaluator.max_epochs, strategy_options=strategy_options,
            pruner_options=pruner_options(evaluator.max_epochs) if pruner_options else None,
            direction="maximize",
        )  # fmt: skip

        def objective(config: dict[str, Any], trial: Any) -> float:
            pruned = False

            def report(epoch: int, value: float) -> bool:
                nonlocal pruned
                try:
                    trial.report(epoch, value)
                except TrialPruned:
                    pruned = True
                return pruned

            value = evaluator.run(config, trial.seed, ledger.wrap(report, config))
            if pruned:
                raise TrialPruned(f"trial {trial.number} pruned")
            return value

        with contextlib.suppress(BudgetExhausted):
            study.optimize(objective, n_trials=None)
        method.last_study = study  # type: ignore[attr-defined]  # for tests and inspection
        try:
            return study.best_config
        except Exception:  # no trial completed within the budget
            return ledger.best_config or {}

    return method


def optuna_method(
    pruner: Callable[[], optuna.pruners.BasePruner],
    sampler: Callable[..., optuna.samplers.BaseSampler] = optuna.samplers.TPESampler,
) -> Method:
    """A method that runs Optuna directly: ``sampler(seed=seed)`` (default: its default TPE)
    with ``pruner()``, both at Optuna's defaults."""
    from hptune.trial import TrialDiverged

    def method(evaluator: Evaluator, ledger: Ledger, seed: int) -> dict[str, Any]:
        _quiet()
        study = optuna.create_study(
            direction="maximize", sampler=sampler(seed=seed), pruner=pruner(),
            # Optuna's Hyperband puts a trial in a bracket by hashing the study name with the
            # trial number; an unnamed study gets a random name, so name it by the seed.
            study_name=f"bench-seed-{seed}",
        )  # fmt: skip
        sp = evaluator.space

        def objective(trial: optuna.Trial) -> float:
            config = sp.sample(trial)
            pruned = False

            def report(epoch: int, value: float) -> bool:
                nonlocal pruned
                trial.report(value, epoch)
                pruned = trial.should_prune()
                return pruned

            value = evaluator.run(
                config, seed * 100_003 + trial.number, ledger.wrap(report, config)
            )
            if pruned:
                raise optuna.TrialPruned()
            return value

        with contextlib.suppress(BudgetExhausted):
            study.optimize(objective, catch=(TrialDiverged,))
        method.last_study = study  # type: ignore[attr-defined]
        try:
            return sp.sample(optuna.trial.FixedTrial(study.best_params))
        except ValueError:
            return ledger.best_config or {}

    return method


def _seed_search(configs: Any, evaluator: Evaluator, ledger: Ledger, seed: int) -> dict:
    """The seed's loop: train each config to the end, keep the best score (no pruning)."""
    from hptune.trial import TrialDiverged

    if evaluator.space != space():
        raise ConfigError(
            f"the seed article's searches cover the common space only (bench/search/space.py); "
            f"task {evaluator.task!r} has its own: run another method there."
        )

    results: list[tuple[float, dict[str, Any]]] = []
    try:
        for number, config in enumerate(configs):
            try:
                score = evaluator.run(config, seed * 100_003 + number, ledger.wrap(None, config))
            except TrialDiverged:
                score = 0.0
            results.append((score, config))
    except BudgetExhausted:
        pass
    return max(results, key=lambda r: r[0])[1] if results else (ledger.best_config or {})


def _seed_random_configs(seed: int) -> Any:
    rng = random.Random(seed)
    while True:
        yield make_config(
            lr=rng.uniform(1e-4, 1e-1), batch_size=rng.choice(BATCH_SIZES),
            weight_decay=rng.uniform(1e-6, 1e-2), warmup_epochs=rng.choice(WARMUPS),
            optimizer=rng.choice(OPTIMIZERS), param=rng.uniform(0.8, 0.95),
            scheduler=rng.choice(SCHEDULERS),
        )  # fmt: skip


def seed_grid_configs() -> list[dict[str, Any]]:
    """The seed article's grid, in its order (lr outermost)."""
    grid = itertools.product([0.1, 0.01, 0.001], [32, 64, 128], [0.0, 0.001, 0.01])
    return [make_config(lr, bs, wd, 0, "adam", 0.9, "plateau") for lr, bs, wd in grid]


@register("seed-random")
def seed_random(evaluator: Evaluator, ledger: Ledger, seed: int) -> dict[str, Any]:
    return _seed_search(_seed_random_configs(seed), evaluator, ledger, seed)


@register("seed-grid")
def seed_grid(evaluator: Evaluator, ledger: Ledger, seed: int) -> dict[str, Any]:
    return _seed_search(seed_grid_configs(), evaluator, ledger, seed)


METHODS["hptune-default"] = hptune_method(DEFAULT_STRATEGY, DEFAULT_PRUNER)
METHODS["hptune-tpe-hyperband"] = hptune_method("tpe", "hyperband")
METHODS["hptune-tpe-nopruner"] = hptune_method("tpe", "none")
METHODS["hptune-tpe-asha"] = hptune_method("tpe", "asha")
METHODS["hptune-tpe-median"] = hptune_method("tpe", "median")
METHODS["hptune-tpe-asha-late"] = hptune_method(
    "tpe", "asha", lambda epochs: {"min_resource": max(1, epochs // 4)}
)
METHODS["hptune-random"] = hptune_method("random", "hyperband")
METHODS["hptune-sobol"] = hptune_method("sobol", "hyperband")
METHODS["hptune-grid"] = hptune_method("grid", "hyperband", n_points=3)
METHODS["hptune-cmaes"] = hptune_method("cmaes", "hyperband")
METHODS["hptune-gp"] = hptune_method("gp", "hyperband")
METHODS["hptune-coarse-to-fine"] = hptune_method("coarse-to-fine", "hyperband")
#: Ablations of its priors (issue 12: "a wrong prior must cost little"): none of the field's,
#: and a deliberately wrong one (LCBench's names; each value far from what works there).
METHODS["hptune-multi-fidelity-no-priors"] = hptune_method(
    "multi-fidelity", "asha", field_priors=False
)
METHODS["hptune-multi-fidelity-wrong-prior"] = hptune_method(
    "multi-fidelity", "asha",
    priors={"learning_rate": 1e-4, "momentum": 0.1, "weight_decay": 0.1, "batch_size": 512},
)  # fmt: skip
METHODS["optuna-tpe"] = optuna_method(optuna.pruners.NopPruner)
METHODS["optuna-tpe-hyperband"] = optuna_method(optuna.pruners.HyperbandPruner)
METHODS["optuna-random-asha"] = optuna_method(
    optuna.pruners.SuccessiveHalvingPruner, optuna.samplers.RandomSampler
)


def _load_peers() -> None:
    try:
        from bench.search.peers import PEER_METHODS
    except Exception as exc:  # an optional peer's import error must not stop the others
        UNAVAILABLE["peers (Ray Tune, Hyperopt)"] = f"not run: {type(exc).__name__}: {exc}"
        return
    METHODS.update(PEER_METHODS)
    if importlib.util.find_spec("dehb") is None:  # importing it would load Dask: seconds
        UNAVAILABLE["dehb"] = (
            "not run: DEHB is not installed (its 0.1.2 declares numpy<2; its code runs on "
            "numpy 2): pip install --no-deps dehb==0.1.2 after the bench extra"
        )
        return
    from bench.search.peers_dehb import dehb

    METHODS["dehb"] = dehb


_load_peers()
