"""The strategy base class and the registry of strategy names (``strategy: tpe``).

A strategy decides where trials go, on an Optuna sampler. Each built-in strategy lives in a
module of its own in this package (as Optuna keeps one module per sampler); this one holds
what they share. A strategy says what it is by attributes (``name``, ``queue_only``),
never by a comparison of its name elsewhere.
"""

from __future__ import annotations

import abc
import importlib.util
from collections.abc import Mapping, Set
from typing import TYPE_CHECKING, Any, ClassVar

import optuna
from optuna.samplers import BaseSampler

from hptune._checks import Rule, check
from hptune.exceptions import ConfigError

if TYPE_CHECKING:
    from hptune.space import Space


class Strategy(abc.ABC):
    """Decides where trials go. Subclass it and :func:`register_strategy` the subclass.

    Options are keyword arguments of the constructor, each with its rule in
    ``option_rules`` (see :mod:`hptune._checks`): the constructor refuses an unknown option
    (naming the valid ones) or a value that breaks its rule, so a bad option is an error
    when the strategy is built, not when its sampler first runs.

    Every method runs in the driver process. When each is called:

    * :meth:`create_sampler` once per :class:`~hptune.study.Study` object, when the study is
      created or loaded.
    * :meth:`prepare` right after that, with the Optuna study (a grid enqueues the first
      window of its points).
    * :meth:`begin` at the start of every ``optimize`` call, with its ``n_trials``.
    * :meth:`next_stage` before every ask: the stage name the next trial is recorded under,
      or None for "ask nothing now".
    * :meth:`refill` when the driver of a ``queue_only`` strategy found the queue empty
      (other drivers took it): whether the strategy queued more.
    * :meth:`finish` at the end of every ``optimize`` call (notes and warnings).
    """

    name: ClassVar[str] = ""
    option_rules: ClassVar[Mapping[str, Rule]] = {}
    #: True for a strategy that runs only the trials it queued (a grid): the driver then
    #: never asks for a fresh trial when the queue is empty, and stops instead.
    queue_only: ClassVar[bool] = False
    #: True for a strategy whose :meth:`next_stage` reads the stages of running trials
    #: (coarse-to-fine counts its coarse trials): a trial's stage is then written when the
    #: trial is created, not only in its record when it ends.
    reads_running_stages: ClassVar[bool] = False

    def __init__(self, **options: Any) -> None:
        unknown = sorted(set(options) - set(self.option_rules))
        if unknown:
            valid = ", ".join(self.option_rules) or "none"
            raise ConfigError(
                f"strategy {self.name!r} got unknown option {unknown[0]!r}; valid: {valid}."
            )
        for key, value in options.items():
            check(f"strategy {self.name!r}: {key}", value, self.option_rules[key])
        self.options = options

    def option(self, key: str, default: Any) -> Any:
        """The value of option ``key`` (checked), or ``default`` when it was not given."""
        return self.options.get(key, default)

    @abc.abstractmethod
    def create_sampler(self, seed: int, n_existing_trials: int) -> BaseSampler:
        """The Optuna sampler; ``n_existing_trials`` > 0 when a stored study is resumed
        (see :func:`hptune.study.derive_sampler_seed`)."""

    def check_space(self, space: Space) -> None:  # noqa: B027 - a hook
        """Refuse (``ConfigError``) options that do not fit ``space``, such as a prior on a
        parameter it lacks. ``validate`` and ``run`` call it before anything runs, and
        :meth:`prepare` of a strategy that has such options."""

    def prepare(self, study: optuna.Study, space: Space, seed: int) -> None:  # noqa: B027 - a hook
        """Called when the study is created or loaded."""

    def begin(self, study: optuna.Study, space: Space, n_trials: int | None) -> None:  # noqa: B027
        """Called at the start of each ``optimize`` call."""

    def next_stage(self, study: optuna.Study, running: Set[int]) -> str | None:
        """The stage of the next trial, or None to ask nothing now: the driver then waits for
        its running trials and stops when none run. ``running`` holds the numbers of the
        trials this driver is running."""
        return self.name

    def refill(self, study: optuna.Study) -> bool:
        """Queue more trials for a ``queue_only`` strategy whose queue was found empty;
        True when the driver should try to pop again, False to stop (the default)."""
        return False

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
    return _REGISTRY[name](**options)


def _require(module: str, strategy: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise ConfigError(
            f"strategy {strategy!r} needs the package {module!r}: pip install {module}."
        )
