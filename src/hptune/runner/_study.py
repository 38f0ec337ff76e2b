"""The study of a spec: create or re-open it (refusing a spec that changes what a trial
means), store the spec with it, and run it until its trial budget is spent."""

from __future__ import annotations

import dataclasses
from typing import Any

from hptune.exceptions import HptuneError
from hptune.runner._base import SPEC_ATTR, make_objective, spec_in, spec_to_dict
from hptune.runner._check import check_spec
from hptune.runner._lr_auto import (
    LR_AUTO_ATTR,
    first_config,
    lr_priors,
    resolved,
    run_range_tests,
)
from hptune.runner._meaning import check_same_meaning, check_warm_start
from hptune.spec import StudySpec, wants_lr_auto, with_lr
from hptune.study import Confirm, StopReason, Study, create_study
from hptune.study._records import STEP_UNIT as STEP_UNIT_ATTR
from hptune.study._study import study_attrs


def open_study(spec: StudySpec) -> Study:
    """Create the spec's study, or re-open it when it exists. A new study with a
    ``warm_start`` begins with the old study's trials that fit its space
    (:func:`hptune.study.create_study`'s ``warm_start_from``).

    Raises:
        HptuneError: The study exists and was run from a spec that differs in what a
            trial means (see :data:`~hptune.runner._meaning.MEANING`). Trial budget,
            timeout, workers, retries, strategy, pruner and storage may change. Or the
            study is new and its ``warm_start`` study differs in more than space and seed.
    """
    check_same_meaning(spec)
    check_warm_start(spec)
    warm = spec.warm_start
    lr_auto = _lr_auto_record(spec)
    space = spec.space if lr_auto is None else with_lr(spec.space, resolved(lr_auto))
    strategy_options = spec.strategy_options
    if lr_auto is not None and (priors := lr_priors(lr_auto, spec)) is not None:
        strategy_options = {**strategy_options, "priors": priors}
    study = create_study(
        space,
        name=spec.name,
        storage=spec.storage,
        direction=spec.direction,
        strategy=spec.strategy,
        pruner=spec.pruner,
        seed=spec.seed,
        load_if_exists=True,
        epochs=spec.budget.epochs,
        strategy_options=strategy_options,
        pruner_options=spec.pruner_options,
        metric=metric_name(spec),
        warm_start_from=None if warm is None else (warm["study"], warm["storage"] or spec.storage),
        # Written with a new study's own attributes: one interrupted while it is made is
        # never left without its spec (then `resume` would not know how it was run).
        user_attrs={SPEC_ATTR: spec_to_dict(spec), STEP_UNIT_ATTR: _step_unit(spec)},
    )
    if lr_auto is not None and LR_AUTO_ATTR not in study.optuna_study.user_attrs:
        study.optuna_study.set_user_attr(LR_AUTO_ATTR, lr_auto)
    return study


def lr_test_due(spec: StudySpec) -> bool:
    """Whether opening the spec's study runs the LR range test (``lr: auto``, new study)."""
    return wants_lr_auto(spec.space) and _existing_attrs(spec) is None


def _existing_attrs(spec: StudySpec) -> dict[str, Any] | None:
    """The user attributes of the spec's study (read without its trials), or None when
    there is no such study (or database) yet."""
    try:
        return study_attrs(spec.name, spec.storage)
    except HptuneError:
        return None


def _lr_auto_record(spec: StudySpec) -> dict[str, Any] | None:
    """For ``lr: auto``: the range test's record, read from the spec's study when it
    exists (the test runs once per study), else found now (see ``_lr_auto``)."""
    if not wants_lr_auto(spec.space):
        return None
    existing = _existing_attrs(spec)
    if existing is None:
        return run_range_tests(spec)
    found = existing.get(LR_AUTO_ATTR)
    if found is None:
        raise HptuneError(
            f"study {spec.name!r} exists without an LR range test, so lr: auto cannot say "
            "which range it searched; give lr the range it was run with, or use a new name."
        )
    return found


def metric_name(spec: StudySpec) -> str | None:
    """What a trial's value is: the spec's metric when the recipe measures it (a task it
    trains) or when the spec names one; None for a full objective whose spec names no
    metric, whose value is whatever it returns (a spec read back from a study has no lines,
    so a re-opened study keeps the name it was given)."""
    from hptune.tasks import Task, resolve_task

    if ("metric",) in spec.lines:
        return spec.metric
    try:
        return spec.metric if isinstance(resolve_task(spec.task), Task) else None
    except HptuneError:
        return spec.metric


def _step_unit(spec: StudySpec) -> str:
    from hptune.tasks import Task, resolve_task

    try:
        return "epoch" if isinstance(resolve_task(spec.task), Task) else "step"
    except HptuneError:
        return "step"


def representative_config(spec: StudySpec) -> dict[str, Any]:
    """One config from the middle of the space (first branch of each choice), without
    ``lr``: what ``lr-find`` sweeps the LR on."""
    return first_config(spec.space)


def prepare(spec: StudySpec) -> Study:
    """Check the spec (:func:`check_spec`) and create or re-open its study; nothing runs."""
    check_spec(spec)
    return open_study(spec)


#: Attempts a resumed run gives an interrupted or stale trial unless told otherwise: resuming
#: means finishing what was cut short.
RESUME_RETRIES = 1


def prepare_resume(
    name: str,
    storage: str,
    *,
    workers: int | None = None,
    retries: int | None = None,
    trials_per_device: int | None = None,
    timeout_s: float | None = None,
) -> tuple[Study, StudySpec]:
    """Re-open the study ``name`` with the spec it was run from, ``workers``,
    ``trials_per_device``, ``retries`` and the budget's timeout (``timeout_s``) overridden
    when given (``retries`` None: the spec's, at least :data:`RESUME_RETRIES`)."""
    spec = spec_in(study_attrs(name, storage), name).replace(storage=storage)
    changes: dict[str, Any] = {"workers": workers, "trials_per_device": trials_per_device}
    if timeout_s is not None:
        changes["budget"] = dataclasses.replace(spec.budget, timeout_s=timeout_s)
    changes = {key: value for key, value in changes.items() if value is not None}
    if changes:
        spec = spec.replace(**changes)
    spec = spec.replace(retries=max(spec.retries, RESUME_RETRIES) if retries is None else retries)
    return open_study(spec), spec


def run(spec: StudySpec, *, listener: Any = None) -> Study:
    """Run (or continue) the study of ``spec`` until its budget is spent (why it stopped:
    ``study.last_stop``)."""
    study = prepare(spec)
    optimize(study, spec, listener)
    return study


def resume(
    name: str,
    storage: str,
    *,
    workers: int | None = None,
    retries: int | None = None,
    trials_per_device: int | None = None,
    timeout_s: float | None = None,
    listener: Any = None,
) -> Study:
    """Continue the study ``name`` with the spec it was run from, retrying its interrupted
    and stale trials (see :func:`prepare_resume`)."""
    study, spec = prepare_resume(
        name,
        storage,
        workers=workers,
        retries=retries,
        trials_per_device=trials_per_device,
        timeout_s=timeout_s,
    )
    optimize(study, spec, listener)
    return study


def optimize(study: Study, spec: StudySpec, listener: Any = None) -> StopReason:
    """Run the prepared ``study`` until the spec's budget is spent (``listener``: progress),
    logging each trial to the spec's ``tracking:`` trackers; returns why it stopped
    (``budget_spent`` at once when nothing was left to run)."""
    # The budget is checked against storage before every ask (max_total_trials), not
    # counted out per run, so drivers on several machines share one budget and a resumed
    # run re-does interrupted and stale trials.
    from hptune.tracking import create_trackers

    kwargs: dict[str, Any] = {}
    if listener is not None:
        kwargs["listener"] = listener
    if spec.trials_per_device is not None and spec.workers > 1:  # one worker runs inline
        kwargs["executor_options"] = {"trials_per_device": spec.trials_per_device}
    if spec.confirm is not None:
        kwargs["confirm"] = Confirm(**spec.confirm)
    return study.optimize(
        make_objective(spec),
        timeout=spec.budget.timeout_s,
        trial_timeout=spec.budget.trial_timeout_s,
        n_workers=spec.workers,
        max_total_trials=spec.budget.trials,
        max_retries=spec.retries,
        trackers=create_trackers(spec.tracking),
        **kwargs,
    )
