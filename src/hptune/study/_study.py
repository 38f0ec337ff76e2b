"""Studies: create, load, optimize, read back. A study is an ordinary Optuna study whose
user attributes hold everything hptune needs to rebuild it (space, strategy, pruner,
direction, seed), so ``load_study(name, storage)`` needs no other input."""

from __future__ import annotations

import dataclasses
import datetime
import importlib
import re
import secrets
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna
import yaml

from hptune._checks import Int, Number, OneOf, Pattern, check, optional
from hptune._defaults import DEFAULT_PRUNER, DEFAULT_STORAGE, DEFAULT_STRATEGY
from hptune.exceptions import ConfigError, HptuneError
from hptune.execution import Executor, create_executor
from hptune.execution._run import resolve_objective
from hptune.space import Space, space_changes
from hptune.study import _budget, _confirm, _records, _warm
from hptune.study._confirm import Confirm, Confirmation, ConfirmedConfig
from hptune.study._driver import NOTES_ATTR, STOP_ATTR, Driver, RunLimits, StopReason
from hptune.study._execution import signals_deferred, sigterm_as_interrupt
from hptune.study._listeners import Listeners, check_trackers, opened
from hptune.study._storage import open_storage, printable_url
from hptune.study._view import PenalizingSampler
from hptune.study.pruners import create_pruner, seed_pruner
from hptune.study.strategies import Strategy, create_strategy

_SPACE, _FINGERPRINT, _SEED = "hptune.space", "hptune.space_fingerprint", "hptune.study_seed"
_STRATEGY, _PRUNER, _DIRECTION = "hptune.strategy", "hptune.pruner", "hptune.direction"
#: A metric name (optuna-dashboard shows it as the label of a trial's value).
_METRIC_NAME = Pattern(r"\S(.{0,98}\S)?", "a one-line name of 1 to 100 characters")


class Study:
    """A hyperparameter search over a space, stored in an Optuna study.

    Build one with :func:`create_study` or :func:`load_study`, not directly.

    Args:
        optuna_study: The Optuna study it lives in.
        space: The search space.
        strategy: The strategy (its sampler is installed here).
        seed: The study seed every trial seed derives from.

    Example:
        >>> from hptune.space import uniform
        >>> study = create_study({"x": uniform(0, 1)}, storage=None, direction="minimize",
        ...                      strategy="random", seed=0)
        >>> study.optimize(lambda config, trial: (config["x"] - 0.3) ** 2, n_trials=5)
        <StopReason.TRIALS: 'trials'>
        >>> len(study.trials)
        5
    """

    def __init__(
        self, optuna_study: optuna.Study, space: Space, strategy: Strategy, seed: int
    ) -> None:
        self.optuna_study = optuna_study
        self.space = space
        self.strategy = strategy
        self.seed = seed
        self._sampler_key: int | None = len(optuna_study.get_trials(deepcopy=False))
        self._install_sampler(self._sampler_key)
        seed_pruner(optuna_study.pruner, seed)
        strategy.prepare(optuna_study, space, seed)

    def _install_sampler(self, key: int) -> None:
        self.optuna_study.sampler = PenalizingSampler(self.strategy.create_sampler(self.seed, key))

    @property
    def awaits_first_new_trial(self) -> bool:
        """Whether :meth:`first_new_trial` still has to be told a number."""
        return self._sampler_key is not None

    def first_new_trial(self, number: int) -> None:
        """Called by the driver with the number of the first trial it creates (not one
        popped from the queue), before that trial is sampled.

        The sampler was seeded by the number of trials the study held when it was loaded.
        Several drivers that load a study at the same moment see the same count and would
        draw the same configs; their first trials, though, get different numbers, so the
        sampler is re-seeded by that number when the two differ. A driver alone on its study
        creates trial number == count, and keeps the sampler it has (and its sequence).
        """
        if self._sampler_key is not None and number != self._sampler_key:
            self._install_sampler(number)
        self._sampler_key = None  # once per Study object: later optimize() calls continue

    @property
    def name(self) -> str:
        return self.optuna_study.study_name

    @property
    def direction(self) -> str:
        return self.optuna_study.direction.name.lower()

    @property
    def metric_name(self) -> str | None:
        """What the value of a trial is (``"val_accuracy"``), as Optuna's metric name, so
        optuna-dashboard labels it; None when the study was created without one."""
        names = self.optuna_study.metric_names
        return names[0] if names else None

    @property
    def warm_start(self) -> dict[str, Any] | None:
        """Where a warm start copied this study's first trials from: ``{"study", "storage",
        "trials"}`` (how many); None for a study that started cold."""
        return self.optuna_study.user_attrs.get(_warm.STUDY_ATTR)

    @property
    def last_stop(self) -> dict[str, Any] | None:
        """Why the last ``optimize`` run on this study that started a trial stopped (any
        driver's): ``{"reason", "at", "trials"}``, None before the first run ended. A run
        that started none (its budget already spent) says so by its return value and
        leaves this as it was, unless there was none."""
        return self.optuna_study.user_attrs.get(STOP_ATTR)

    @property
    def notes(self) -> list[str]:
        """What strategies noted (e.g. an optimum at the bound of a range)."""
        return list(self.optuna_study.user_attrs.get(NOTES_ATTR, []))

    def optimize(
        self,
        objective: Callable[..., float] | str,
        n_trials: int | None = None,
        timeout: float | None = None,
        n_workers: int = 1,
        executor: Executor | str | None = None,
        listener: Any = None,
        *,
        executor_options: dict[str, Any] | None = None,
        trial_timeout: float | None = None,
        max_total_trials: int | None = None,
        max_retries: int = 0,
        deterministic: bool = False,
        batch_size: int = 4,
        heartbeat_interval: float = 10.0,
        grace_period: float = 60.0,
        trackers: Sequence[Any] = (),
        confirm: Confirm | None = None,
    ) -> StopReason:
        """Run trials: ``objective(config, trial) -> float`` for each config the strategy
        proposes, until ``n_trials`` trials have started in this call, ``timeout`` seconds
        have passed (running trials then finish), the study holds ``max_total_trials``
        trials that count, or the strategy is exhausted (grid).

        Ctrl-C and SIGTERM stop it cleanly: running trials are recorded FAILED
        ``"interrupted"``, finished ones are kept, and ``KeyboardInterrupt`` propagates.

        Returns the :class:`~hptune.study.StopReason` (also recorded as the study's
        ``hptune.stop``, with the time and the trials that count).

        Args:
            objective: A callable or ``"package.module:function"`` (needed by worker
                processes that cannot receive a lambda).
            n_trials: Trials to start in this call; None for no limit.
            timeout: Seconds after which no new trial starts; None for no limit.
            n_workers: Trials at once, in worker processes when > 1.
            executor: An :class:`~hptune.execution.Executor` (started and shut down by this
                call; exclusive with ``n_workers > 1``) or ``"inline"``, ``"process"``,
                ``"ray"``.
            listener: An object with ``trial_started(number, config)`` and
                ``trial_finished(record)`` methods, called in this process (progress bars).
            executor_options: Options of a named executor: ``ProcessExecutor``'s keyword
                arguments, or for Ray ``ray_address``, ``num_cpus_per_trial``,
                ``num_gpus_per_trial``, ``max_concurrent``, ``init_kwargs``.
            trial_timeout: Seconds after which a trial is stopped and recorded FAILED.
                Trials then run in worker processes (one for ``n_workers=1``): only a
                process can be stopped; the inline executor refuses it.
            max_total_trials: A budget shared by every driver of the study: no trial starts
                once the study's trials that count (COMPLETE, PRUNED, FAILED but not
                interrupted, stale or duplicate) plus those running anywhere reach it.
            max_retries: Attempts after the first for a trial whose driver died (stale) or
                whose worker process died; a retry has the same config and seed.
            deterministic: Ask and tell in fixed batches of ``batch_size`` so that the
                configs are the same for any ``n_workers`` and any timing (see
                ``hptune.study._batch``).
            batch_size: Trials per batch in deterministic mode.
            heartbeat_interval: Seconds between heartbeats of running trials.
            grace_period: Seconds without a heartbeat after which another driver's running
                trial is failed as stale (its driver died).
            trackers: Experiment trackers that log every trial as it ends
                (:mod:`hptune.tracking`: ``MlflowTracker``, ``TensorBoardTracker``), run in
                this process alongside ``listener``. Each is opened before the first trial
                (and logs the study's finished trials it lacks) and closed at the end; a
                failure to log one trial is a warning, not the end of the study.
            confirm: Re-train the search's ``confirm.top`` best distinct configs
                ``confirm.seeds`` times each with fresh seeds, unpruned, as the last
                ``confirm.n_trials`` trials of ``max_total_trials`` (which it needs); the
                best trial is then the config with the best mean over its fresh seeds
                (:attr:`confirmation`). Picked once no search trial runs in any driver;
                an interrupted confirmation resumes with the same configs.

        Example:
            >>> from hptune.space import uniform
            >>> study = create_study({"x": uniform(0, 1)}, storage=None, strategy="random",
            ...                      direction="minimize", seed=0)
            >>> study.optimize(lambda c, t: c["x"], n_trials=4, deterministic=True,
            ...                batch_size=2)
            <StopReason.TRIALS: 'trials'>
            >>> len(study.trials)
            4
        """
        seconds = Number(low=0, low_open=True)
        for key, value, rule in (
            ("n_trials", n_trials, optional(Int(low=1))),
            ("timeout", timeout, optional(seconds)),
            ("trial_timeout", trial_timeout, optional(seconds)),
            ("max_total_trials", max_total_trials, optional(Int(low=1))),
            ("max_retries", max_retries, Int(low=0)),
            ("batch_size", batch_size, Int(low=1)),
            ("heartbeat_interval", heartbeat_interval, seconds),
            ("grace_period", grace_period, seconds),
        ):
            check(f"optimize: {key}", value, rule)
        if confirm is not None:
            _check_confirm(confirm, max_total_trials)
        if grace_period <= heartbeat_interval:
            raise ConfigError(
                f"optimize: grace_period ({grace_period}) must exceed heartbeat_interval "
                f"({heartbeat_interval}), or live trials would be reaped as stale; raise "
                "grace_period to a few heartbeat intervals."
            )
        limits = RunLimits(
            n_trials=n_trials,
            timeout_s=timeout,
            trial_timeout_s=trial_timeout,
            max_total_trials=max_total_trials,
            max_retries=max_retries,
            deterministic=bool(deterministic),
            batch_size=batch_size,
            heartbeat_interval=float(heartbeat_interval),
            grace_period=float(grace_period),
        )
        if not callable(objective):
            # A reference that cannot name a function fails every trial: refuse it first,
            # and import it here when hptune's local executors run the trials (a Ray
            # worker, or an executor of your own, may have packages this driver lacks).
            _check_objective_ref(objective)
            if executor in (None, "inline", "process"):
                resolve_objective(objective)
        trackers = check_trackers(trackers)
        runner = create_executor(executor, n_workers, executor_options, trial_timeout)
        reseed = self.first_new_trial if self.awaits_first_new_trial else None
        driver = Driver(
            self.optuna_study,
            self.space,
            self.strategy,
            self.seed,
            objective,
            runner,
            limits,
            Listeners(listener, trackers) if trackers else listener,
            on_first_new_trial=reseed,
            confirm=confirm,
        )
        with sigterm_as_interrupt(), opened(trackers, self):
            return driver.run()

    @property
    def n_counted_trials(self) -> int:
        """Trials that used up the trial budget: COMPLETE, PRUNED, and FAILED except those
        interrupted, reaped as stale (a resumed run does those again) or dropped as a
        duplicate grid point."""
        return sum(_budget.counts(t) for t in self.optuna_study.get_trials(deepcopy=False))

    @property
    def trials(self) -> list[_records.TrialRecord]:
        """Every trial, in number order, as immutable records."""
        attrs = self.optuna_study.user_attrs
        return [
            self._unrecorded(_records.record_from_frozen(t, attrs))
            for t in self.optuna_study.get_trials(deepcopy=False)
        ]

    def _unrecorded(self, record: _records.TrialRecord) -> _records.TrialRecord:
        """A running trial's record is written when it ends; until then its config comes
        from its sampled params and its seed from its number (as the driver drew them)."""
        if record.config or record.state != "RUNNING" or not record.params:
            return record
        try:
            config = self.space.sample(optuna.trial.FixedTrial(record.params))
        except Exception:  # still being sampled
            return record
        seed = record.seed
        if seed is None:
            seed = _records.derive_trial_seed(self.seed, record.number)
        return dataclasses.replace(record, config=config, seed=seed)

    @property
    def confirmation(self) -> Confirmation | None:
        """The configs re-trained with fresh seeds (``optimize(confirm=...)``), best first,
        with their means and spreads and the study's seed noise; None without any."""
        return _confirm.summarize(self.trials, self.direction)

    @property
    def best_trial(self) -> _records.TrialRecord:
        """The best COMPLETE trial: after a confirmation, the search trial whose config has
        the best mean over its fresh seeds (see :attr:`confirmation`), else the single best
        reading. Raises HptuneError when none has completed."""
        return self._best()[0]

    def _best(self) -> tuple[_records.TrialRecord, ConfirmedConfig | None]:
        """The best trial and, after a confirmation, its confirmed config, from one read
        of the trials."""
        records = self.trials
        confirmed = _confirm.summarize(records, self.direction)
        chosen = confirmed.best if confirmed is not None else None
        if chosen is not None:
            return next(r for r in records if r.number == chosen.trial), chosen
        try:
            frozen = self.optuna_study.best_trial
        except ValueError:
            raise HptuneError(
                f"study {self.name!r} has no completed trial yet; run study.optimize first."
            ) from None
        return _records.record_from_frozen(frozen, self.optuna_study.user_attrs), None

    @property
    def best_config(self) -> dict[str, Any]:
        return self.best_trial.config

    @property
    def best_value(self) -> float:
        """The best trial's value; after a confirmation, its config's mean over its fresh
        seeds (the reading that picked it is biased upwards, and left out)."""
        return _best_value(*self._best())

    def to_rows(self) -> list[dict[str, Any]]:
        """One flat dict per trial (``params.*`` columns), for tables without pandas."""
        rows = []
        for r in self.trials:
            row = {
                k: getattr(r, k) for k in ("number", "state", "value", "duration", "seed", "stage")
            }
            kind = r.failure_kind.value if r.failure_kind else None
            row.update(
                failure_reason=r.failure_reason, failure_kind=kind, config_hash=r.config_hash
            )
            row.update({f"params.{k}": v for k, v in r.params.items()})
            rows.append(row)
        return rows

    def to_dataframe(self) -> Any:
        """:meth:`to_rows` as a ``pandas.DataFrame``. pandas is not a dependency of hptune."""
        try:
            pandas = importlib.import_module("pandas")
        except ImportError:
            raise HptuneError(
                "study.to_dataframe needs pandas, which hptune does not install: "
                "pip install pandas; or use study.to_rows() / study.trials."
            ) from None
        return pandas.DataFrame(self.to_rows())

    def export_best(self, path: str | Path) -> Path:
        """Write the best config as YAML with its value, trial number, seed and study;
        after a confirmation the value is its fresh mean, with ``sd``, the fresh ``seeds``
        and the ``search_value`` that picked it."""
        best, chosen = self._best()
        doc: dict[str, Any] = {
            "study": self.name,
            "direction": self.direction,
            "trial": best.number,
            "value": _best_value(best, chosen),
            "seed": best.seed,
            "config_hash": best.config_hash,
        }
        if chosen is not None:
            doc.update(sd=chosen.std, seeds=len(chosen.values), search_value=chosen.search_value)
        doc["config"] = best.config
        path = Path(path)
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path

    def __repr__(self) -> str:
        return f"Study(name={self.name!r}, direction={self.direction!r}, trials={len(self.trials)})"


def _best_value(best: _records.TrialRecord, chosen: ConfirmedConfig | None) -> float:
    """The confirmed config's fresh mean, else the best trial's own value."""
    if chosen is not None and chosen.mean is not None:
        return chosen.mean
    assert best.value is not None
    return best.value


def _check_objective_ref(objective: Any) -> None:
    """Raise ConfigError unless ``objective`` has the shape of ``"package.module:function"``."""
    if not (
        isinstance(objective, str)
        and re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*", objective) is not None
    ):
        raise ConfigError(
            "optimize: objective must be a callable or a 'package.module:function' string, "
            f"got {objective!r}."
        )


def _check_confirm(confirm: Any, max_total_trials: int | None) -> None:
    if not isinstance(confirm, Confirm):
        raise ConfigError(
            f"optimize: confirm must be a hptune.study.Confirm, got {confirm!r}; e.g. "
            "confirm=Confirm(top=3, seeds=2)."
        )
    if max_total_trials is None or confirm.n_trials >= max_total_trials:
        raise ConfigError(
            f"optimize: confirm takes its {confirm.n_trials} trials (top x seeds) from "
            f"max_total_trials, which must be larger, got {max_total_trials}; raise "
            "max_total_trials or lower confirm.top/seeds."
        )


def create_study(
    space: Space | Mapping[str, Any],
    *,
    name: str | None = None,
    storage: str | optuna.storages.BaseStorage | None = DEFAULT_STORAGE,
    direction: str | None = None,
    strategy: str = DEFAULT_STRATEGY,
    pruner: str = DEFAULT_PRUNER,
    seed: int | None = None,
    load_if_exists: bool = False,
    epochs: int | None = None,
    strategy_options: Mapping[str, Any] | None = None,
    pruner_options: Mapping[str, Any] | None = None,
    metric: str | None = None,
    warm_start_from: Study | str | tuple[str, Any] | None = None,
    user_attrs: Mapping[str, Any] | None = None,
) -> Study:
    """Create a study (or re-open one of the same space with ``load_if_exists=True``).

    Args:
        space: A :class:`~hptune.space.Space` or the mapping to build one from.
        name: The study name; default ``"hptune-<UTC time>-<random>"``.
        storage: A database URL (``"sqlite:///hptune.db"``, the default, in the working
            directory; ``"postgresql+psycopg://..."`` for many machines), an Optuna storage,
            or None to keep the study in memory.
        direction: ``"maximize"`` (an accuracy) or ``"minimize"`` (a loss). Required for
            a new study: hptune does not guess which way an objective's value is better
            (a spec derives it from its metric). None re-opens a study
            (``load_if_exists=True``) in its recorded direction.
        strategy: One of :func:`~hptune.study.list_strategies`; by default
            ``multi-fidelity`` (one TPE over every rung, with the field's priors).
        pruner: One of :func:`~hptune.study.list_pruners`; by default ``asha`` (an
            objective that reports nothing per epoch is never pruned).
        seed: The study seed. None draws one at random and records it, so every trial still
            has a recorded seed and the study can be re-run exactly.
        load_if_exists: Re-open a study of that name instead of failing. Its space must be
            the same; its recorded seed is kept; the given strategy and pruner apply (and are
            recorded) from now on.
        epochs: The training budget, from which the pruner's resources are derived.
        strategy_options: Options of the strategy (see its class).
        pruner_options: Options of the pruner (see :mod:`hptune.study.pruners`).
        metric: What the objective's value is (``"val_loss"``), recorded as Optuna's metric
            name (``optuna_study.metric_names``): optuna-dashboard then labels the value
            with it instead of "Objective 0". None records none (or keeps the recorded one).
        user_attrs: Study attributes of the caller's (JSON-able), written with a new
            study's own, before it counts as made (a ``hptune run`` records its spec so:
            a study interrupted while it was made never lacks it); on a re-opened study
            they are written again.
        warm_start_from: An older study whose results the new one starts from: a
            :class:`Study`, its name in ``storage``, or a ``(name, storage)`` pair. Used
            only when the study is created (not when it is re-opened): its COMPLETE and
            PRUNED trials, and those that diverged or ran out of memory, whose configs fit
            ``space`` are copied into the new study (stage ``"warm-start"``, attribute
            ``hptune.warm_start_from``), where the sampler learns from them; they do not use
            up the trial budget. The objective must mean the same in both studies (same
            data, metric and epochs); only the space may differ. See ``study/_warm.py``.

    Raises:
        ConfigError: For a bad argument.
        HptuneError: When the study exists (and ``load_if_exists`` is False), or exists with a
            different space, direction or seed.
    """
    space = space if isinstance(space, Space) else Space(space)
    check("create_study: direction", direction, optional(OneOf(("minimize", "maximize"))))
    check("create_study: seed", seed, optional(Int(low=0)), fix="None draws one and records it")
    check("create_study: metric", metric, optional(_METRIC_NAME), fix="e.g. 'val_loss'")
    if warm_start_from is not None and not isinstance(warm_start_from, Study):
        _warm.source_of(warm_start_from)  # a bad form is refused even when it goes unused
    for what, options in (
        ("strategy_options", strategy_options),
        ("pruner_options", pruner_options),
    ):
        if options is not None and not (
            isinstance(options, Mapping) and all(isinstance(k, str) for k in options)
        ):
            raise ConfigError(
                f"create_study: {what} must be a mapping of option name to value "
                f"({{'reduction_factor': 3}}) or None, got {options!r}."
            )
    strat = create_strategy(strategy, **dict(strategy_options or {}))
    pr = create_pruner(pruner, epochs=epochs, **dict(pruner_options or {}))
    name = name or _default_name()
    backend = open_storage(storage)
    if direction is None:
        direction = _recorded_direction(backend, name) if load_if_exists else None
    if direction is None:
        raise ConfigError(
            "create_study: direction must be given for a new study: 'maximize' when the "
            "objective returns an accuracy, 'minimize' when it returns a loss."
        )
    # The old study of a warm start is read (and refused) before the new one is created, so
    # a refusal leaves nothing behind; a study that exists already is re-opened without it.
    source = None
    if warm_start_from is not None and name not in optuna.get_all_study_names(backend):
        source = _warm_source(warm_start_from, storage, name, direction)
    kwargs = {
        "study_name": name,
        "storage": backend,
        "sampler": optuna.samplers.RandomSampler(),  # replaced by the strategy's in Study
        "pruner": pr,
        "direction": direction,
    }
    strategy_attr = {"name": strategy, "options": dict(strategy_options or {})}
    pruner_attr = {"name": pruner, "epochs": epochs, "options": dict(pruner_options or {})}
    # A Ctrl-C while the study is made and its attributes written is held until they are:
    # a study left half made waits every later driver out (INIT_WAIT_S), then refuses.
    with signals_deferred():
        try:
            ostudy = optuna.create_study(**kwargs)
        except optuna.exceptions.DuplicatedStudyError:
            ostudy = None
        else:
            study = _initialize(
                ostudy, space, strat, seed, direction, strategy_attr, pruner_attr, source,
                user_attrs,
            )  # fmt: skip
    if ostudy is None:
        if not load_if_exists:
            raise HptuneError(
                f"a study named {name!r} already exists in {printable_url(storage)!r}; open it "
                f"with hptune.load_study({name!r}, storage), pass load_if_exists=True, or "
                "choose another name."
            )
        ostudy = optuna.load_study(study_name=name, storage=backend, sampler=kwargs["sampler"])
        ostudy.pruner = pr
        if not _await_creator(ostudy):
            study = _initialize(
                ostudy, space, strat, seed, direction, strategy_attr, pruner_attr, source,
                user_attrs,
            )  # fmt: skip
        else:
            seed = _check_reopened(ostudy, space, direction, seed)
            ostudy.set_user_attr(_STRATEGY, strategy_attr)
            ostudy.set_user_attr(_PRUNER, pruner_attr)
            for key, value in (user_attrs or {}).items():
                ostudy.set_user_attr(key, value)
            study = Study(ostudy, space, strat, seed)
    if metric is not None and study.metric_name != metric:
        set_metric_name(ostudy, metric)
    return study


def set_metric_name(ostudy: optuna.Study, metric: str) -> None:
    """Record ``metric`` as the study's one Optuna metric name (what optuna-dashboard
    labels the value with). Optuna marks ``set_metric_names`` experimental; its warning
    says nothing a user of hptune can act on."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        ostudy.set_metric_names([metric])


def _initialize(
    ostudy: optuna.Study,
    space: Space,
    strategy: Strategy,
    seed: int | None,
    direction: str,
    strategy_attr: dict[str, Any],
    pruner_attr: dict[str, Any],
    source: tuple[optuna.Study, str] | None = None,
    user_attrs: Mapping[str, Any] | None = None,
) -> Study:
    """Record a new study's attributes, copy the trials of a warm start's ``source`` study
    (with its printable storage), and prepare it (a grid enqueues its points).

    ``hptune.space`` is written last: a driver that loads the study meanwhile (several
    machines started at once on one PostgreSQL study) waits for it, so it never sees half
    the attributes or half the copies, and never enqueues a grid a second time.
    """
    seed = secrets.randbits(32) if seed is None else seed
    ostudy.set_user_attr(_FINGERPRINT, space.fingerprint())
    ostudy.set_user_attr(_SEED, seed)
    ostudy.set_user_attr(_DIRECTION, direction)
    ostudy.set_user_attr(_STRATEGY, strategy_attr)
    ostudy.set_user_attr(_PRUNER, pruner_attr)
    for key, value in (user_attrs or {}).items():
        ostudy.set_user_attr(key, value)
    if source is not None:
        _warm.warm_start(ostudy, space, *source)
    study = Study(ostudy, space, strategy, seed)
    ostudy.set_user_attr(_SPACE, space.to_dict())
    return study


#: How long a driver waits for another driver to finish creating the study it loads, and
#: how long an empty study must stay without hptune's first attribute before it is adopted
#: (as made by Optuna itself). As long as the wait: on a loaded machine a creator can take
#: seconds between creating the study and writing its first attribute, and a study adopted
#: by two drivers gets its grid enqueued twice.
INIT_WAIT_S = ADOPT_AFTER_S = 60.0


def _await_creator(ostudy: optuna.Study) -> bool:
    """Wait until the driver that created this study has initialized it (True), or find
    that none will: an empty study made by Optuna itself, which is adopted (False)."""
    start, name = time.monotonic(), ostudy.study_name
    while True:
        attrs = ostudy.user_attrs
        if _SPACE in attrs:
            return True
        waited = time.monotonic() - start
        if _FINGERPRINT not in attrs:  # hptune's first attribute, written before any trial
            if ostudy.get_trials(deepcopy=False):
                raise HptuneError(
                    f"study {name!r} holds trials not written by hptune; choose another name."
                )
            if waited > ADOPT_AFTER_S:
                return False
        elif waited > INIT_WAIT_S:
            raise HptuneError(
                f"study {name!r} was being created by another driver that has not finished "
                f"in {INIT_WAIT_S:.0f} s (it may have died): delete it with "
                f"optuna.delete_study(study_name={name!r}, storage=...) and start again."
            )
        time.sleep(0.2)


def _warm_source(value: Any, storage: Any, name: str, direction: str) -> tuple[optuna.Study, str]:
    """The Optuna study a warm start copies from, and its storage as printed.

    Raises:
        ConfigError: It is the new study itself, it cannot be found from an in-memory
            study, or it optimizes in the other direction.
        HptuneError: There is no such hptune study.
    """
    if isinstance(value, Study):
        _warm.check_direction(value.optuna_study, direction)
        return value.optuna_study, "(given as a Study)"
    source_name, source_storage = _warm.source_of(value)
    source_storage = storage if source_storage is None else source_storage
    if source_name == name and (source_storage is storage or source_storage == storage):
        raise ConfigError(
            f"create_study: warm_start_from names the study {name!r} itself; name the older "
            "study to start from."
        )
    if source_storage is None:
        raise ConfigError(
            "create_study: warm_start_from needs the old study's storage when this study is "
            "in memory: pass (name, storage) or the Study."
        )
    source = load_study(source_name, source_storage).optuna_study
    _warm.check_direction(source, direction)
    return source, printable_url(source_storage)


def _check_reopened(ostudy: optuna.Study, space: Space, direction: str, seed: int | None) -> int:
    attrs, name = ostudy.user_attrs, ostudy.study_name
    if attrs[_FINGERPRINT] != space.fingerprint():
        changes = ", ".join(
            f"{path} {old!r} -> {new!r}"
            for path, old, new in space_changes(attrs[_SPACE], space.to_dict())
        )
        raise HptuneError(
            f"study {name!r} was created with a different space: {changes or 'key order'}. "
            f"Use a new study name for a new space (warm_start_from={name!r} starts it from "
            "this study's results), or pass the same space (hptune.load_study reads it)."
        )
    if attrs[_DIRECTION] != direction:
        raise HptuneError(
            f"study {name!r} was created with direction={attrs[_DIRECTION]!r}, given "
            f"{direction!r}; pass direction={attrs[_DIRECTION]!r} or use a new study name."
        )
    stored = attrs[_SEED]
    if seed is not None and seed != stored:
        raise HptuneError(
            f"study {name!r} was created with seed={stored}, given seed={seed}; pass "
            f"seed={stored} or seed=None to continue it, or use a new study name."
        )
    return int(stored)


def _recorded_direction(storage: Any, name: str) -> str | None:
    """The direction a stored hptune study ``name`` was created with, if there is one."""
    try:
        ostudy = optuna.load_study(study_name=name, storage=storage)
    except KeyError:  # no such study
        return None
    return ostudy.user_attrs.get(_DIRECTION)


def _default_name() -> str:
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"hptune-{stamp}-{secrets.token_hex(3)}"


def load_study(name: str, storage: str | optuna.storages.BaseStorage = DEFAULT_STORAGE) -> Study:
    """Re-open the hptune study ``name`` from ``storage`` with its recorded space, strategy,
    pruner, direction and seed. A SQLite file that does not exist is an error, never
    created: re-opening must not leave an empty database behind a mistyped path.

    Raises:
        HptuneError: No such study or database, or a study not written by hptune.
    """
    ostudy = _open_existing(name, storage)
    attrs = ostudy.user_attrs
    strat, pr = attrs[_STRATEGY], attrs[_PRUNER]
    ostudy.pruner = create_pruner(pr["name"], epochs=pr["epochs"], **pr["options"])
    strategy = create_strategy(strat["name"], **strat["options"])
    return Study(ostudy, Space.from_dict(attrs[_SPACE]), strategy, int(attrs[_SEED]))


def study_attrs(name: str, storage: str | optuna.storages.BaseStorage) -> dict[str, Any]:
    """The user attributes of the hptune study ``name`` (its recorded spec, space, seed,
    ...), read without its trials: :func:`load_study` reads every trial (0.6 s at 2,000 on
    SQLite here), which a check before a run does not need.

    Raises:
        HptuneError: As :func:`load_study`.
    """
    return _open_existing(name, storage).user_attrs


def _open_existing(name: str, storage: str | optuna.storages.BaseStorage | None) -> optuna.Study:
    """The Optuna study ``name``, once hptune has initialized it; see :func:`load_study`."""
    if storage is None:
        raise ConfigError("load_study: an in-memory study cannot be re-opened; give a storage URL.")
    where, storage = printable_url(storage), open_storage(storage, create=False)
    try:
        summaries = optuna.get_all_study_names(storage=storage)
    except Exception as exc:
        raise HptuneError(f"cannot open storage {where!r}: {exc}") from exc
    if name not in summaries:
        raise HptuneError(
            f"no study named {name!r} in {where!r}; the studies there are: "
            f"{', '.join(map(repr, summaries)) or 'none'}."
        )
    ostudy = optuna.load_study(
        study_name=name, storage=storage, sampler=optuna.samplers.RandomSampler()
    )
    if not _await_creator(ostudy):
        raise HptuneError(f"study {name!r} was not written by hptune (no {_SPACE!r} attribute).")
    return ostudy
