"""The tracker interface, the registry of tracker names, and what every tracker logs.

A tracker is a driver listener (see ``study/_driver.py``): it runs in the driver process,
whatever executor runs the trials, so it needs no pickling and sees every trial of its run
in the order they finish. The driver knows a trial's curve only when the trial is told, so
a tracker logs each trial whole, once, when it finishes: its config, seed, state, curve,
value and the objective's attributes.

When it is opened, a tracker also logs the study's finished trials that its store does not
hold yet (``logged_trials``): tracking turned on for a study that ran without it, a trial
that finished while the store was down, or one finished by another run. So a store catches
up with its study on every run, and never logs a trial twice from one driver.
"""

from __future__ import annotations

import abc
import importlib
import math
from collections.abc import Mapping
from typing import Any, ClassVar

from hptune._checks import Rule, check
from hptune.exceptions import ConfigError

#: The states of a trial that finished (the ones a tracker logs).
FINISHED = ("COMPLETE", "PRUNED", "FAILED")


class Tracker(abc.ABC):
    """Logs a study's trials to an experiment tracker, from the driver process.

    ``Study.optimize(trackers=[...])`` calls :meth:`open` once before its first trial,
    :meth:`trial_finished` as each trial is told, and :meth:`close` when it returns or
    raises. An error in :meth:`open` stops ``optimize`` before any trial starts (a wrong
    URI, a missing package); an error while logging a trial is a warning and the study
    goes on (the next run logs what was missed).

    Subclasses set ``name`` and ``option_rules`` (each option's :mod:`hptune._checks`
    rule, checked when the tracker is built) and implement :meth:`start`,
    :meth:`logged_trials` and :meth:`log_trial`.

    Example:
        >>> class Printer(Tracker):
        ...     name = "printer"
        ...     def start(self, study): self.logged = set()
        ...     def logged_trials(self): return self.logged
        ...     def log_trial(self, record): self.logged.add(record.number)
        >>> from hptune import create_study, uniform
        >>> study = create_study({"x": uniform(0, 1)}, storage=None, direction="minimize")
        >>> printer = Printer()
        >>> study.optimize(lambda config, trial: config["x"], n_trials=2, trackers=[printer])
        <StopReason.TRIALS: 'trials'>
        >>> sorted(printer.logged)
        [0, 1]
    """

    name: ClassVar[str] = ""
    option_rules: ClassVar[Mapping[str, Rule]] = {}

    def __init__(self, **options: Any) -> None:
        for key, value in options.items():
            self._check_option(key, value)
        self.options = dict(options)
        self.metric = "value"

    @classmethod
    def _check_option(cls, key: str, value: Any) -> None:
        if key not in cls.option_rules:
            valid = ", ".join(cls.option_rules) or "none"
            raise ConfigError(f"tracker {cls.name!r} has no option {key!r}; valid: {valid}.")
        check(f"tracker {cls.name!r}: {key}", value, cls.option_rules[key])

    # -- the calls Study.optimize makes ---------------------------------------------------

    def open(self, study: Any) -> None:
        """Start logging ``study`` (an :class:`hptune.Study`), then log its finished trials
        that the store does not hold yet."""
        self.metric = study.metric_name or "value"
        self.start(study)
        logged = self.logged_trials()
        for record in study.trials:
            if record.state in FINISHED and record.number not in logged:
                self.log_trial(record)

    def trial_started(self, number: int, config: dict[str, Any]) -> None:  # noqa: B027
        """A trial was submitted (nothing to log yet: its curve comes with its end)."""

    def trial_finished(self, record: Any) -> None:
        """A trial was told: log it (a :class:`~hptune.study.TrialRecord`)."""
        self.log_trial(record)

    def close(self, interrupted: bool = False) -> None:  # noqa: B027
        """``optimize`` ended (``interrupted``: by Ctrl-C, SIGTERM or an error)."""

    # -- what a tracker implements ----------------------------------------------------------

    @abc.abstractmethod
    def start(self, study: Any) -> None:
        """Open the store for ``study`` (its run, experiment or folder)."""

    @abc.abstractmethod
    def logged_trials(self) -> set[int]:
        """The numbers of the study's trials the store holds already."""

    @abc.abstractmethod
    def log_trial(self, record: Any) -> None:
        """Log one finished trial."""


# -- what every tracker logs ------------------------------------------------------------------


def flat_params(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config as dotted keys: ``{"optimizer": {"name": "sgd", "momentum": 0.9}}``
    gives ``{"optimizer.name": "sgd", "optimizer.momentum": 0.9}``; lists are kept whole.

    Example:
        >>> flat_params({"lr": 0.1, "optimizer": {"name": "sgd", "momentum": 0.9}})
        {'lr': 0.1, 'optimizer.name': 'sgd', 'optimizer.momentum': 0.9}
    """
    out: dict[str, Any] = {}
    for key, value in config.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flat_params(value, path + "."))
        else:
            out[path] = value
    return out


def numeric_attrs(attrs: Mapping[str, Any]) -> dict[str, float]:
    """The objective's attributes that are finite numbers (``test_accuracy``, ``best_epoch``),
    which trackers log as metrics; the others (``device``) are logged as text."""
    return {
        key: float(value)
        for key, value in attrs.items()
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    }


def study_params(study: Any) -> dict[str, Any]:
    """What a study is, for a tracker's study-level record: direction, metric, seed,
    strategy name, pruner class, warm start source."""
    params = {
        "direction": study.direction,
        "metric": study.metric_name or "value",
        "seed": study.seed,
        "strategy": study.strategy.name,
        "pruner": type(study.optuna_study.pruner).__name__,
    }
    if study.warm_start:
        params["warm_start_from"] = study.warm_start["study"]
    return {k: v for k, v in params.items() if v is not None}


# -- the registry -------------------------------------------------------------------------

#: Tracker name -> its class, or ``"module:Class"`` for the built-ins (imported on first use:
#: the modules import their packages only when a tracker is built).
_TRACKERS: dict[str, type[Tracker] | str] = {
    "mlflow": "hptune.tracking.mlflow:MlflowTracker",
    "tensorboard": "hptune.tracking.tensorboard:TensorBoardTracker",
}


def register_tracker(cls: type[Tracker]) -> type[Tracker]:
    """Make ``cls`` available by its ``name`` to specs (``tracking: {name: {...}}``);
    usable as a class decorator. The name must be new."""
    if not (isinstance(cls, type) and issubclass(cls, Tracker)) or not cls.name:
        raise ConfigError(
            f"register_tracker: expected a Tracker subclass with a name, got {cls!r}."
        )
    if cls.name in _TRACKERS:
        raise ConfigError(f"register_tracker: a tracker named {cls.name!r} exists already.")
    _TRACKERS[cls.name] = cls
    return cls


def list_trackers() -> list[str]:
    """The names a spec's ``tracking:`` section may use."""
    return list(_TRACKERS)


def tracker_class(name: str) -> type[Tracker]:
    """The tracker class registered as ``name`` (its package is not imported)."""
    entry = _TRACKERS.get(name)
    if entry is None:
        raise ConfigError(f"unknown tracker {name!r}; valid: {', '.join(_TRACKERS)}.")
    if isinstance(entry, str):
        module, _, attr = entry.partition(":")
        entry = getattr(importlib.import_module(module), attr)
        _TRACKERS[name] = entry
    return entry  # type: ignore[return-value]


def option_problems(name: str, options: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(option, message)`` for each option of tracker ``name`` that is unknown or breaks
    its rule, without building the tracker (a spec checks its ``tracking:`` section so)."""
    cls = tracker_class(name)
    problems = []
    for key, value in options.items():
        try:
            cls._check_option(key, value)
        except ConfigError as exc:
            problems.append((key, str(exc)))
    return problems


def create_tracker(name: str, options: Mapping[str, Any] | None = None) -> Tracker:
    """Build the tracker registered as ``name`` with ``options``.

    Raises:
        ConfigError: An unknown name or a bad option.
        MissingExtraError: Its package is not installed (the message names the extra).
    """
    return tracker_class(name)(**dict(options or {}))


def create_trackers(section: Mapping[str, Mapping[str, Any] | None] | None) -> list[Tracker]:
    """The trackers of a spec's ``tracking:`` section, in its order."""
    return [create_tracker(name, options) for name, options in (section or {}).items()]
