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
from typing import Any

from hptune.exceptions import HptuneError
from hptune.spec import Budget, StudySpec
from hptune.study import Study, create_study, load_study

SPEC_ATTR = "hptune.spec"
#: Failure reasons of trials that never had a fair run; they do not use up the budget.
#: (The drivers' shared ``max_total_trials`` check uses the same tuple.)


def spec_to_dict(spec: StudySpec) -> dict[str, Any]:
    """The spec as a JSON-able dict (stored with the study)."""
    return dataclasses.asdict(spec)


def spec_from_dict(data: dict[str, Any]) -> StudySpec:
    data = dict(data)
    data["budget"] = Budget(**data.get("budget", {}))
    return StudySpec(**data)


def open_study(spec: StudySpec) -> Study:
    """Create the spec's study, or re-open it when it exists (same space required)."""
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
    return study


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
    task resolves, the recipe accepts the training options, and every kind of config the
    space can produce (each conditional branch, at one point per dimension) builds its
    optimizer and scheduler. Raises ConfigError naming the problem."""
    from hptune.exceptions import ConfigError
    from hptune.tasks import Task, resolve_task

    make_objective(spec)
    space = spec.build_space()
    task = resolve_task(spec.task)
    if not isinstance(task, Task):
        return  # a full objective: its config is its own business
    if space.grid_size(n_points=1) > _MAX_CHECKED_CONFIGS:
        return
    for config in space.grid(n_points=1):
        try:
            _dry_build(config)
        except ConfigError as exc:
            raise ConfigError(f"space produces a config the recipe rejects: {exc}") from None


def representative_config(spec: StudySpec) -> dict[str, Any]:
    """One config from the middle of the space (first branch of each choice), without
    ``lr``: what ``lr-find`` sweeps the LR on."""
    config = spec.build_space().grid(n_points=1)[0]
    config.pop("lr", None)
    return config


def _dry_build(config: dict[str, Any]) -> None:
    """Build the config's optimizer and scheduler on a one-weight model."""
    import torch

    from hptune.training import create_lr_scheduler, create_optimizer_from_config
    from hptune.training._recipe_config import parse_config, scheduler_options

    cfg = parse_config(config)
    model = torch.nn.Linear(1, 1)
    optimizer = create_optimizer_from_config(
        model, cfg.optimizer, lr=cfg.lr or 1e-3, weight_decay=cfg.weight_decay
    )
    name, options = scheduler_options(cfg, after_steps=10, direction="maximize")
    create_lr_scheduler(optimizer, name, **options)


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
    number: int
    seed: int
    config: dict[str, Any]
    original: float | None
    new: float | None
    state: str
    reason: str | None

    @property
    def identical(self) -> bool:
        return self.original is not None and self.original == self.new


def rerun(study: Study, number: int) -> RerunResult:
    """Run trial ``number`` again with its config and seed, in this process, unpruned."""
    from hptune.execution._run import run_job
    from hptune.execution.base import TrialJob

    records = {r.number: r for r in study.trials}
    if number not in records:
        raise HptuneError(
            f"study {study.name!r} has no trial {number}; trials are 0..{len(records) - 1}."
        )
    record = records[number]
    if record.seed is None:
        raise HptuneError(f"trial {number} of {study.name!r} has no recorded seed.")
    spec = stored_spec(study)
    job = TrialJob(number, record.config, record.seed, make_objective(spec))
    outcome = run_job(job, lambda step, value: False, worker="rerun")
    return RerunResult(
        number=number,
        seed=record.seed,
        config=record.config,
        original=record.value,
        new=outcome.value,
        state=outcome.state.value,
        reason=outcome.reason,
    )
