"""Strategies: where the next trial goes, by name, on Optuna's samplers.

The names are those of the CLI and the YAML spec (``strategy: tpe``):

============== ==============================================================================
name           what it runs
============== ==============================================================================
grid           every point of ``space.grid(n_points)`` exactly once (conditional branches
               expanded), enqueued when the study is created; the study stops when the grid
               is exhausted. Optuna's ``GridSampler`` cannot do conditional spaces.
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
============== ==============================================================================

Every sampler is seeded from the study's seed, so a study re-run with the same seed proposes
the same configs in the same order (sequentially; parallel workers finish in any order).

Example:
    >>> strategy = create_strategy("tpe", n_startup_trials=5)
    >>> sampler = strategy.create_sampler(seed=0, n_existing_trials=0)
    >>> type(sampler).__name__
    'TPESampler'
"""

from __future__ import annotations

import abc
import importlib.util
import random
import warnings
from collections.abc import Set
from typing import TYPE_CHECKING, Any, ClassVar

import optuna
from optuna.samplers import BaseSampler
from optuna.trial import TrialState

from hptune.exceptions import ConfigError
from hptune.study import _budget, _records

if TYPE_CHECKING:
    from hptune.space import Space


class Strategy(abc.ABC):
    """Decides where trials go. Subclass it and :func:`register_strategy` the subclass.

    Options are keyword arguments of the constructor, listed in ``option_names`` so that a
    misspelt option is rejected by :func:`create_strategy` with the valid ones named.

    Every method runs in the driver process. When each is called:

    * :meth:`create_sampler` once per :class:`~hptune.study.Study` object, when the study is
      created or loaded.
    * :meth:`prepare` right after that, with the Optuna study (grid enqueues its points).
    * :meth:`begin` at the start of every ``optimize`` call, with its ``n_trials``.
    * :meth:`next_stage` before every ask: the stage name the next trial is recorded under,
      or None for "ask nothing now".
    * :meth:`finish` at the end of every ``optimize`` call (notes and warnings).
    """

    name: ClassVar[str] = ""
    option_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **options: Any) -> None:
        self.options = options

    @abc.abstractmethod
    def create_sampler(self, seed: int, n_existing_trials: int) -> BaseSampler:
        """The Optuna sampler; ``n_existing_trials`` > 0 when a stored study is resumed
        (see :func:`hptune.study.derive_sampler_seed`)."""

    def prepare(self, study: optuna.Study, space: Space, seed: int) -> None:  # noqa: B027 - a hook
        """Called when the study is created or loaded."""

    def begin(self, study: optuna.Study, space: Space, n_trials: int | None) -> None:  # noqa: B027
        """Called at the start of each ``optimize`` call."""

    def next_stage(self, study: optuna.Study, running: Set[int]) -> str | None:
        """The stage of the next trial, or None to ask nothing now: the driver then waits for
        its running trials and stops when none run. ``running`` holds the numbers of the
        trials this driver is running."""
        return self.name

    def finish(self, study: optuna.Study) -> list[str]:
        """Called at the end of each ``optimize`` call; returns notes to record."""
        return []


_REGISTRY: dict[str, type[Strategy]] = {}


def register_strategy(name: str, cls: type[Strategy]) -> None:
    """Make ``name`` usable in ``create_study(strategy=...)`` and in YAML specs."""
    if not isinstance(name, str) or not name:
        raise ConfigError(f"a strategy name must be a non-empty string, got {name!r}.")
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise ConfigError(f"strategy {name!r}: {cls!r} is not a Strategy subclass.")
    _REGISTRY[name] = cls


def list_strategies() -> list[str]:
    """The registered strategy names, in the order they were registered."""
    return list(_REGISTRY)


def create_strategy(name: str, **options: Any) -> Strategy:
    """Build the strategy registered as ``name`` with ``options``.

    Raises:
        ConfigError: For an unknown name or option, naming the valid ones.
    """
    if name not in _REGISTRY:
        raise ConfigError(f"unknown strategy {name!r}; valid: {', '.join(list_strategies())}.")
    cls = _REGISTRY[name]
    unknown = sorted(set(options) - set(cls.option_names))
    if unknown:
        valid = ", ".join(cls.option_names) or "none"
        raise ConfigError(f"strategy {name!r} got unknown option {unknown[0]!r}; valid: {valid}.")
    return cls(**options)


def _check_int(strategy: str, key: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(
            f"strategy {strategy!r}: {key} must be an int >= {minimum}, got {value!r}."
        )
    return value


def _require(module: str, strategy: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise ConfigError(
            f"strategy {strategy!r} needs the package {module!r}: pip install {module}."
        )


class RandomStrategy(Strategy):
    """Independent random draws (log dimensions log-uniformly). No options."""

    name = "random"

    def create_sampler(self, seed: int, n_existing_trials: int) -> BaseSampler:
        return optuna.samplers.RandomSampler(
            seed=_records.derive_sampler_seed(seed, n_existing_trials)
        )


class SobolStrategy(Strategy):
    """Scrambled Sobol points over the numeric dimensions.

    Args:
        scramble: Owen scrambling (default True); unscrambled Sobol starts at the corner of
            the space.
    """

    name = "sobol"
    option_names = ("scramble",)

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
                scramble=bool(self.options.get("scramble", True)),
                seed=seed,
                independent_sampler=fallback,
                warn_asynchronous_seeding=False,
                warn_independent_sampling=False,
            )


class TPEStrategy(Strategy):
    """Multivariate, grouped TPE.

    Args:
        n_startup_trials: Random trials before TPE models the results (default 10).
        n_ei_candidates: Candidates scored per proposal (default 24).
    """

    name = "tpe"
    option_names = ("n_startup_trials", "n_ei_candidates")

    def create_sampler(self, seed: int, n_existing_trials: int) -> BaseSampler:
        return tpe_sampler(
            _records.derive_sampler_seed(seed, n_existing_trials),
            n_startup_trials=_check_int(
                self.name, "n_startup_trials", self.options.get("n_startup_trials", 10), 0
            ),
            n_ei_candidates=_check_int(
                self.name, "n_ei_candidates", self.options.get("n_ei_candidates", 24), 1
            ),
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


class CmaEsStrategy(Strategy):
    """CMA-ES over the numeric dimensions every trial has.

    Args:
        n_startup_trials: Trials drawn by the independent sampler first (default 1).
        popsize: Population size (default: CMA-ES's ``4 + 3 ln(d)``).
        use_separable_cma: Diagonal covariance, for many dimensions (default False).
        with_margin: CMA-ES with margin for integer dimensions (default False).
    """

    name = "cmaes"
    option_names = ("n_startup_trials", "popsize", "use_separable_cma", "with_margin")

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


class GPStrategy(Strategy):
    """Gaussian-process Bayesian optimization.

    Args:
        n_startup_trials: Random trials before the GP is fitted (default 10).
        deterministic_objective: The objective has no noise (default False).
    """

    name = "gp"
    option_names = ("n_startup_trials", "deterministic_objective")

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


#: Study user attribute recording how many grid points were enqueued.
GRID_ATTR = "hptune.grid"


class GridStrategy(Strategy):
    """Every point of ``space.grid(n_points)`` exactly once, in an order shuffled by the
    study seed.

    The points are enqueued as Optuna WAITING trials when the study is created, and the
    study stops when no point waits. Re-opening the study enqueues again every point that no
    trial holds (none counts, runs or waits for it: its trial was interrupted, or reaped as
    stale), so a resumed grid is complete. With several drivers on one shared study, the
    points are shared out among them; should two drivers both re-enqueue a point, the
    driver that pops the later copy drops it (see ``hptune.study._budget``).
    The shuffle matters when the budget is smaller than the grid: in the space's own order
    the first trials would all sit in one corner (the smallest lr, say); shuffled, any
    prefix of the grid spreads over the whole space, as Optuna's GridSampler does.

    Args:
        n_points: Points per continuous dimension that sets no grid of its own (see
            :meth:`hptune.space.Space.grid`).
        shuffle: Visit the points in an order shuffled by the study seed (default True);
            False keeps the order of :meth:`hptune.space.Space.grid`.
    """

    name = "grid"
    option_names = ("n_points", "shuffle")

    def create_sampler(self, seed: int, n_existing_trials: int) -> BaseSampler:
        # Every parameter of a grid point is fixed; the sampler is never consulted for them.
        return optuna.samplers.RandomSampler(
            seed=_records.derive_sampler_seed(seed, n_existing_trials)
        )

    def prepare(self, study: optuna.Study, space: Space, seed: int) -> None:
        points = space.grid(self.options.get("n_points"))
        if self.options.get("shuffle", True):
            random.Random(seed).shuffle(points)
        held = {_budget.grid_point(t) for t in study.get_trials(deepcopy=False) if _budget.holds(t)}
        n_new = 0
        for config in points:
            params = space.flatten(config)
            if _records.canonical_json(params) not in held:
                study.enqueue_trial(params)
                n_new += 1
        if n_new or GRID_ATTR not in study.user_attrs:
            study.set_user_attr(GRID_ATTR, {"size": len(points), "enqueued": n_new})

    def next_stage(self, study: optuna.Study, running: Set[int]) -> str | None:
        waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
        return self.name if waiting else None


for _cls in (GridStrategy, RandomStrategy, SobolStrategy, TPEStrategy, CmaEsStrategy, GPStrategy):
    register_strategy(_cls.name, _cls)

# Registered last: it builds on the strategies above.
from hptune.study import _coarse_to_fine  # noqa: E402, F401
