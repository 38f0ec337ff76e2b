"""Run a study from a spec: the glue between the YAML spec, the task, the recipe and the
study. The CLI is a thin layer over these functions; Python users may call them too.

A study run from a spec stores the spec in its user attributes (``hptune.spec``), so
``resume``, ``rerun`` and ``lr-find`` need nothing but the study's name and storage.

The trial budget (``budget.trials``) counts across runs and machines: a run starts only the
trials still missing. Trials that ended as ``interrupted`` (Ctrl-C) or were reaped after
their driver died do not count: resuming runs them again.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from hptune.exceptions import ConfigError, HptuneError
from hptune.spec import Budget, StudySpec, spec_error, unknown_key_message
from hptune.study import Study, TrialRecord, create_study, load_study

SPEC_ATTR = "hptune.spec"
#: ``"epoch"`` when the study's trials report once per epoch (a task trained by the
#: recipe), else ``"step"``; the report labels learning curves with it.
STEP_UNIT_ATTR = "hptune.step_unit"
#: Parts of a spec that change what a trial's config means: a study refuses to continue
#: under a spec that changes one of them (the space and seed are checked by the study).
MEANING = ("task", "metric", "direction", "budget.epochs", "training")
#: Training options that change nothing about a trial's result.
_OUTPUT_ONLY_TRAINING = ("save_best",)


def spec_to_dict(spec: StudySpec) -> dict[str, Any]:
    """The spec as a JSON-able dict (stored with the study)."""
    data = dataclasses.asdict(spec)
    data.pop("lines", None)  # tuple keys; only the spec file's errors need them
    return data


def spec_from_dict(data: dict[str, Any]) -> StudySpec:
    data = dict(data)
    data["budget"] = Budget(**data.get("budget", {}))
    return StudySpec(**data)


def open_study(spec: StudySpec) -> Study:
    """Create the spec's study, or re-open it when it exists.

    Raises:
        HptuneError: The study exists and was run from a spec that differs in what a
            trial means (see :data:`MEANING`; the space, direction and seed are checked
            too). Trial budget, timeout, workers, strategy, pruner and storage may change.
    """
    check_same_meaning(spec)
    study = create_study(
        spec.space,
        name=spec.name,
        storage=spec.storage,
        direction=spec.direction,
        strategy=spec.strategy,
        pruner=spec.pruner,
        seed=spec.seed,
        load_if_exists=True,
        epochs=spec.budget.epochs,
        strategy_options=spec.strategy_options,
        pruner_options=spec.pruner_options,
    )
    study.optuna_study.set_user_attr(SPEC_ATTR, spec_to_dict(spec))
    study.optuna_study.set_user_attr(STEP_UNIT_ATTR, _step_unit(spec))
    return study


def _step_unit(spec: StudySpec) -> str:
    from hptune.tasks import Task, resolve_task

    try:
        return "epoch" if isinstance(resolve_task(spec.task), Task) else "step"
    except HptuneError:
        return "step"


def check_same_meaning(spec: StudySpec) -> None:
    """Raise HptuneError when the spec's study exists and was run from a spec that differs
    in what a trial means (:data:`MEANING`); see :func:`open_study`."""
    try:
        stored = stored_spec(load_study(spec.name, spec.storage))
    except HptuneError:
        return  # no such study (yet), or not run from a spec: create_study decides
    changes = [
        f"{key} {_shown(old)} -> {_shown(new)}" for key, old, new in _meaning_changes(stored, spec)
    ]
    if changes:
        restore = "that value" if len(changes) == 1 else "those values"
        raise HptuneError(
            f"study {spec.name!r} was run with a different spec: {', '.join(changes)}; its "
            "trials would not be comparable with new ones. Run it as a new study (--name NEW, "
            f"or another name: in the spec), or restore {restore} to continue it."
        )


def _meaning_changes(old: StudySpec, new: StudySpec) -> list[tuple[str, Any, Any]]:
    """``(key path, stored value, new value)`` for each part of :data:`MEANING` that differs."""
    changes = []
    for key in ("task", "metric", "direction"):
        if getattr(old, key) != getattr(new, key):
            changes.append((key, getattr(old, key), getattr(new, key)))
    if old.budget.epochs != new.budget.epochs:
        changes.append(("budget.epochs", old.budget.epochs, new.budget.epochs))
    keys = dict.fromkeys([*old.training, *new.training])
    for key in keys:
        before, after = old.training.get(key), new.training.get(key)
        if key not in _OUTPUT_ONLY_TRAINING and before != after:
            changes.append((f"training.{key}", before, after))
    return changes


def _shown(value: Any) -> str:
    return "(unset)" if value is None else repr(value)


def stored_spec(study: Study) -> StudySpec:
    """The spec a study was run from; an error for studies made in Python."""
    data = study.optuna_study.user_attrs.get(SPEC_ATTR)
    if data is None:
        raise HptuneError(
            f"study {study.name!r} was not run from a spec (created in Python?), so there is no "
            "task to run; use study.optimize(objective) from Python."
        )
    return spec_from_dict(data)


#: Where ``training.save_best`` writes each trial's best weights: ``<OUTPUT_DIR>/<study>/``.
OUTPUT_DIR = "hptune-out"
#: Configs checked by :func:`check_spec` at most (the grid at one point per dimension).
_MAX_CHECKED_CONFIGS = 200


def make_objective(spec: StudySpec) -> Any:
    """The picklable objective that trains ``spec.task`` for one config."""
    from hptune.tasks.objective import TaskObjective

    return TaskObjective(
        task=spec.task,
        epochs=spec.budget.epochs,
        metric=spec.metric,
        direction=spec.direction,
        training=dict(spec.training),
        output_dir=f"{OUTPUT_DIR}/{spec.name}" if spec.training.get("save_best") else None,
    )


def check_spec(spec: StudySpec) -> None:
    """Everything that can be checked before a run, so a bad spec never starts one: the
    metric and direction, the task, the training options, and every kind of config the
    space can produce against the recipe and the task's model (each conditional branch
    and choice, and each numeric range at both of its ends).

    Raises:
        SpecError: Every problem, each with the spec's file, line and key path.
    """
    problems = _objective_problems(spec)
    task = _resolve_task(spec, problems)
    if task is not None:
        problems += _space_problems(spec, task)
    if problems:
        raise spec_error(spec, problems)


Problem = tuple[tuple[str, ...], str]


def _objective_problems(spec: StudySpec) -> list[Problem]:
    from hptune.training.recipe import METRICS

    if spec.metric not in METRICS:
        return [(("metric",), f"unknown metric {spec.metric!r}; valid: {', '.join(METRICS)}")]
    if spec.direction != METRICS[spec.metric]:
        better = "higher" if METRICS[spec.metric] == "maximize" else "lower"
        return [
            (
                ("direction",),
                f"{spec.direction} does not fit metric {spec.metric!r}, which is better "
                f"{better}; use direction: {METRICS[spec.metric]}",
            )
        ]
    try:
        make_objective(spec)
    except ConfigError as exc:
        return [(("training",), str(exc))]
    return []


def _resolve_task(spec: StudySpec, problems: list[Problem]) -> Any:
    """The spec's task when it is a :class:`~hptune.tasks.Task`; None for a full objective
    (its config is its own business) or a task that does not resolve (a problem then)."""
    from hptune.tasks import Task, resolve_task

    try:
        task = resolve_task(spec.task)
    except HptuneError as exc:
        problems.append((("task",), str(exc)))
        return None
    return task if isinstance(task, Task) else None


def _space_problems(spec: StudySpec, task: Any) -> list[Problem]:
    """What the recipe and the task's model reject, one problem per key path."""
    from hptune.space import Conditional

    space = spec.build_space()
    dims = dict(space.dimensions())
    branches = {name for name, dim in dims.items() if isinstance(dim, Conditional)}
    check = _ConfigCheck(task, branches)
    found: dict[tuple[str, ...], str] = {}
    kinds = _kinds(space, dims)
    for config in kinds:
        for path, message in check(config):
            found.setdefault(path, message)
    if found:
        return list(found.items())
    for name, side, bound, config in _range_ends(space, dims, kinds):
        for _, message in check(config):
            where = ("space", *name.split("."))
            found.setdefault(
                where, f"{dims[name]!r} reaches {bound!r} at its {side} end: {message}"
            )
    return list(found.items())


def _kinds(space: Any, dims: dict[str, Any]) -> list[dict[str, Any]]:
    """Every kind of config: the grid with one point per numeric dimension (each choice
    value and branch combined), or, when that grid is large, each choice value and branch
    once on a base config."""
    from hptune.space import Choice, Conditional

    if space.grid_size(n_points=1) <= _MAX_CHECKED_CONFIGS:
        return space.grid(n_points=1)
    base = {name: dim.grid_values(1)[0] for name, dim in dims.items()}
    kinds = [_config_from(space, base)]
    for name, dim in dims.items():
        if isinstance(dim, (Choice, Conditional)):
            kinds += [_config_from(space, {**base, name: v}) for v in dim.grid_values(1)[1:]]
    return kinds


def _range_ends(space: Any, dims: dict[str, Any], kinds: list[dict[str, Any]]) -> Any:
    """``(parameter, "low" | "high", bound, config)``: a config of ``kinds`` that has the
    numeric parameter, with the parameter moved to each end of its range."""
    from hptune.space import FloatDimension, IntDimension

    flat = [space.flatten(config) for config in kinds]
    for name, dim in dims.items():
        if not isinstance(dim, (FloatDimension, IntDimension)) or not dim.low < dim.high:
            continue
        params = next((p for p in flat if name in p), None)
        if params is None:
            continue
        for side, bound in (("low", dim.low), ("high", dim.high)):
            yield name, side, bound, _config_from(space, {**params, name: bound})


def _config_from(space: Any, params: dict[str, Any]) -> dict[str, Any]:
    """The config ``space.sample`` gives for these parameter values (extra ones unused)."""
    import optuna

    return space.sample(optuna.trial.FixedTrial(params))


class _ConfigCheck:
    """``check(config) -> [(key path, message)]``: what the recipe (config keys, values,
    optimizer, scheduler) and the task's model reject in one config. Models are built once
    per distinct ``model`` section."""

    def __init__(self, task: Any, branches: set[str]) -> None:
        self.task, self.branches = task, branches
        self.models: dict[str, list[Problem]] = {}

    def __call__(self, config: dict[str, Any]) -> list[Problem]:
        from hptune.training._recipe_config import CONFIG_KEYS

        problems: list[Problem] = [
            (("space", str(key)), _unknown_config_key(key))
            for key in config
            if key not in CONFIG_KEYS
        ]
        known = {k: v for k, v in config.items() if k in CONFIG_KEYS}
        problems += self._recipe(known) + self._model(known)
        return problems

    def _path(self, key: str, value: Any) -> tuple[str, ...]:
        if key in self.branches and isinstance(value, dict):
            return ("space", key, str(value.get("name")))
        return ("space", key)

    def _recipe(self, config: dict[str, Any]) -> list[Problem]:
        import torch

        from hptune.training import create_lr_scheduler
        from hptune.training._recipe_config import build_optimizer, parse_config, scheduler_options

        alone = [
            (self._path(key, value), _rejects(value, exc))
            for key, value in config.items()
            if key != "model" and (exc := _error(parse_config, {key: value}))
        ]
        if alone:
            return alone
        try:
            cfg = parse_config(config)
        except ConfigError as exc:  # keys that conflict: both warmup forms
            return [(("space", "warmup_steps"), str(exc))]

        def optimizer_of(cfg: Any) -> Any:
            return build_optimizer(torch.nn.Linear(1, 1), cfg, cfg.base_lr())

        def scheduler_of(cfg: Any) -> Any:
            name, options = scheduler_options(cfg, after_steps=10, direction="maximize")
            return create_lr_scheduler(optimizer_of(cfg), name, **options)

        for key, build in (("optimizer", optimizer_of), ("scheduler", scheduler_of)):
            exc = _error(build, cfg)
            if exc is not None:
                return [self._blame(key, config, exc, build)]
        return []

    def _blame(self, key: str, config: dict[str, Any], exc: BaseException, build: Any) -> Problem:
        """The problem at ``key`` (optimizer, scheduler): at its first option that fails
        on its own when there is one, else at the key. ``build`` takes a RecipeConfig."""
        from hptune.training._recipe_config import parse_config

        value = config.get(key)
        path = self._path(key, value)
        if isinstance(value, dict):
            for option, setting in value.items():
                if option == "name":
                    continue
                alone = {**config, key: {"name": value.get("name"), option: setting}}
                if (first := _error(_then, parse_config, build, alone)) is not None:
                    return (*path, str(option)), _message(first)
        return path, _message(exc)

    def _model(self, config: dict[str, Any]) -> list[Problem]:
        section = config.get("model")
        key = json.dumps(section, sort_keys=True, default=repr)
        if key not in self.models:
            self.models[key] = self._build(config, section)
        return self.models[key]

    def _build(self, config: dict[str, Any], section: Any) -> list[Problem]:
        exc = _error(self.task.build_model, config)
        if exc is None:
            return []
        if isinstance(section, dict):  # blame the first option that fails on its own
            for option, value in section.items():
                alone = _error(self.task.build_model, {**config, "model": {option: value}})
                if alone is not None:
                    message = _message(alone).removeprefix(f"model.{option}: ")
                    return [(("space", "model", str(option)), message)]
        where = ("space", "model") if "model" in config else ("space",)
        return [(where, f"the task's model cannot be built: {_message(exc)}")]


def _error(action: Any, *args: Any) -> BaseException | None:
    """The exception ``action(*args)`` raises (what a trial would fail with), or None."""
    try:
        action(*args)
    except Exception as exc:
        return exc
    return None


def _then(first: Any, second: Any, value: Any) -> Any:
    return second(first(value))


def _message(exc: BaseException) -> str:
    from hptune.execution._run import one_line

    return str(exc).strip() if isinstance(exc, HptuneError) else one_line(exc)


def _rejects(value: Any, exc: BaseException) -> str:
    if value is None or isinstance(value, dict):
        return _message(exc)
    return f"the recipe rejects {value!r}: {_message(exc)}"


def _unknown_config_key(key: Any) -> str:
    from hptune.training._recipe_config import CONFIG_KEYS

    return (
        "not a config key of the recipe: "
        + unknown_key_message(key, CONFIG_KEYS)
        + " (options of your own model go under model:)"
    )


def representative_config(spec: StudySpec) -> dict[str, Any]:
    """One config from the middle of the space (first branch of each choice), without
    ``lr``: what ``lr-find`` sweeps the LR on."""
    config = spec.build_space().grid(n_points=1)[0]
    config.pop("lr", None)
    return config


def remaining_trials(study: Study, total: int | None) -> int | None:
    """Trials still to start for a budget of ``total`` (None: no trial budget)."""
    if total is None:
        return None
    return max(0, total - study.n_counted_trials)


def run(spec: StudySpec, *, listener: Any = None) -> Study:
    """Run (or continue) the study of ``spec`` until its budget is spent."""
    check_spec(spec)
    study = open_study(spec)
    _optimize(study, spec, listener)
    return study


def resume(name: str, storage: str, *, workers: int | None = None, listener: Any = None) -> Study:
    """Continue the study ``name`` with the spec it was run from."""
    study = load_study(name, storage)
    spec = stored_spec(study)
    if workers is not None:
        spec = spec.replace(workers=workers)
    study = open_study(spec.replace(storage=storage))
    _optimize(study, spec, listener)
    return study


def _optimize(study: Study, spec: StudySpec, listener: Any) -> None:
    # The budget is checked against storage before every ask (max_total_trials), not
    # counted out per run, so drivers on several machines share one budget and a resumed
    # run re-does interrupted and stale trials.
    if remaining_trials(study, spec.budget.trials) == 0:
        return
    kwargs: dict[str, Any] = {}
    if listener is not None:
        kwargs["listener"] = listener
    study.optimize(
        make_objective(spec),
        timeout=spec.budget.timeout_s,
        n_workers=spec.workers,
        max_total_trials=spec.budget.trials,
        **kwargs,
    )


@dataclasses.dataclass(frozen=True)
class RerunResult:
    """A trial run again next to what it recorded.

    Args:
        number: The trial's number.
        seed: Its recorded seed, which the re-run used.
        config: Its recorded config, which the re-run used.
        original: What the trial recorded: its value (COMPLETE), the value it reported at
            ``step`` (PRUNED), None (FAILED).
        new: The same quantity from the re-run.
        state: The re-run's state: ``"COMPLETE"``, ``"PRUNED"`` (stopped at ``step``, as
            the trial was) or ``"FAILED"``.
        reason: The re-run's failure reason, if it failed.
        original_state: The trial's recorded state.
        original_reason: The trial's recorded failure reason, if it failed.
        step: For a pruned trial, the step it was pruned at.
    """

    number: int
    seed: int
    config: dict[str, Any]
    original: float | None
    new: float | None
    state: str
    reason: str | None
    original_state: str = "COMPLETE"
    original_reason: str | None = None
    step: int | None = None

    @property
    def identical(self) -> bool:
        """Whether the re-run did what the trial did: the same value (at the pruned step,
        for a pruned trial), or the same failure reason."""
        if self.state != self.original_state:
            return False
        if self.state == "FAILED":
            return self.reason == self.original_reason
        return self.original is not None and self.original == self.new


def check_rerun(study: Study, number: int) -> TrialRecord:
    """The record of trial ``number`` if :func:`rerun` can reproduce it.

    Raises:
        HptuneError: No such trial, a trial that never finished (running, waiting,
            interrupted, stale) or has no seed, or a study not run from a spec.
    """
    from hptune.study._budget import NOT_COUNTED

    stored_spec(study)
    records = {r.number: r for r in study.trials}
    if number not in records:
        numbers = f"trials are 0..{max(records)}" if records else "it has no trials yet"
        raise HptuneError(f"study {study.name!r} has no trial {number}; {numbers}.")
    record = records[number]
    unfinished = record.state not in ("COMPLETE", "PRUNED", "FAILED") or (
        record.state == "FAILED" and (record.failure_reason or "").startswith(NOT_COUNTED)
    )
    if unfinished:
        why = record.failure_reason or record.state
        raise HptuneError(
            f"trial {number} of {study.name!r} never finished ({why}), so there is no result "
            "to reproduce; `hptune resume` runs it again."
        )
    if record.seed is None:
        raise HptuneError(f"trial {number} of {study.name!r} has no recorded seed.")
    if record.state == "PRUNED" and not record.intermediate_values:
        raise HptuneError(
            f"trial {number} of {study.name!r} was pruned before it reported a value, so "
            "there is no value to compare."
        )
    return record


def rerun(study: Study, number: int) -> RerunResult:
    """Run trial ``number`` again in this process with its config and seed, and do what
    it did: train to the end (a COMPLETE or FAILED trial), or, for a PRUNED trial, train
    with the same total epochs (so the schedule is the same) and stop after the step it
    was pruned at, comparing the value reported there.

    Raises:
        HptuneError: As :func:`check_rerun`.
    """
    from hptune.execution._run import run_job
    from hptune.execution.base import TrialJob
    from hptune.trial import is_finite

    record = check_rerun(study, number)
    spec = stored_spec(study)
    pruned_at = max(record.intermediate_values) if record.state == "PRUNED" else None
    reported: dict[int, float] = {}

    def reporter(step: int, value: float) -> bool:
        reported[step] = value
        return pruned_at is not None and step >= pruned_at

    job = TrialJob(number, record.config, record.seed, make_objective(spec))
    outcome = run_job(job, reporter, worker="rerun")
    state, reason, new = outcome.state.name, outcome.reason, outcome.value
    if state == "COMPLETE" and not is_finite(new):  # what the driver records (see study)
        state, reason = "FAILED", f"objective returned {new}"
    if pruned_at is not None:
        original, new = record.intermediate_values[pruned_at], reported.get(pruned_at)
    else:
        original = record.value
    return RerunResult(
        number=number,
        seed=record.seed,
        config=record.config,
        original=original,
        new=new if state != "FAILED" else None,
        state=state,
        reason=reason,
        original_state=record.state,
        original_reason=record.failure_reason,
        step=pruned_at,
    )
