"""The study of a spec: create or re-open it (refusing a spec that changes what a trial
means), store the spec with it, and run it until its trial budget is spent."""

from __future__ import annotations

import dataclasses
from typing import Any

from hptune.exceptions import HptuneError
from hptune.runner._base import SPEC_ATTR, make_objective, spec_to_dict, stored_spec
from hptune.runner._check import check_spec
from hptune.spec import StudySpec
from hptune.study import Study, create_study, load_study
from hptune.study._records import STEP_UNIT as STEP_UNIT_ATTR
from hptune.training.options import TrainingOptions

#: Parts of a spec that change what a trial's config means: a study refuses to continue
#: under a spec that changes one of them (the space and seed are checked by the study).
MEANING = ("task", "metric", "direction", "budget.epochs", "training")
#: Training options that change nothing about a trial's result.
_OUTPUT_ONLY_TRAINING = ("save_best",)


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
    for field in dataclasses.fields(TrainingOptions):
        before, after = getattr(old.training, field.name), getattr(new.training, field.name)
        if field.name not in _OUTPUT_ONLY_TRAINING and before != after:
            changes.append((f"training.{field.name}", before, after))
    return changes


def _shown(value: Any) -> str:
    return "(unset)" if value is None else repr(value)


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


def prepare(spec: StudySpec) -> Study:
    """Check the spec (:func:`check_spec`) and create or re-open its study; nothing runs."""
    check_spec(spec)
    return open_study(spec)


def prepare_resume(
    name: str, storage: str, *, workers: int | None = None, trials_per_device: int | None = None
) -> tuple[Study, StudySpec]:
    """Re-open the study ``name`` with the spec it was run from (``workers`` and
    ``trials_per_device`` overridden when given)."""
    spec = stored_spec(load_study(name, storage)).replace(storage=storage)
    changes = {"workers": workers, "trials_per_device": trials_per_device}
    changes = {key: value for key, value in changes.items() if value is not None}
    if changes:
        spec = spec.replace(**changes)
    return open_study(spec), spec


def run(spec: StudySpec, *, listener: Any = None) -> Study:
    """Run (or continue) the study of ``spec`` until its budget is spent."""
    study = prepare(spec)
    optimize(study, spec, listener)
    return study


def resume(
    name: str, storage: str, *, workers: int | None = None, trials_per_device: int | None = None,
    listener: Any = None,
) -> Study:  # fmt: skip
    """Continue the study ``name`` with the spec it was run from."""
    study, spec = prepare_resume(
        name, storage, workers=workers, trials_per_device=trials_per_device
    )
    optimize(study, spec, listener)
    return study


def optimize(study: Study, spec: StudySpec, listener: Any = None) -> None:
    """Run the prepared ``study`` until the spec's budget is spent (``listener``: progress)."""
    # The budget is checked against storage before every ask (max_total_trials), not
    # counted out per run, so drivers on several machines share one budget and a resumed
    # run re-does interrupted and stale trials.
    if remaining_trials(study, spec.budget.trials) == 0:
        return
    kwargs: dict[str, Any] = {}
    if listener is not None:
        kwargs["listener"] = listener
    if spec.trials_per_device is not None and spec.workers > 1:  # one worker runs inline
        kwargs["executor_options"] = {"trials_per_device": spec.trials_per_device}
    study.optimize(
        make_objective(spec),
        timeout=spec.budget.timeout_s,
        n_workers=spec.workers,
        max_total_trials=spec.budget.trials,
        **kwargs,
    )
