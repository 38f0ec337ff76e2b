"""Run one :class:`TrialJob` to an outcome. Shared by every executor (one code path)."""

from __future__ import annotations

import importlib
import time
import traceback as tb
from collections.abc import Callable
from typing import Any

from hptune.exceptions import ConfigError, one_line
from hptune.execution._environment import apply_environment
from hptune.execution.base import (
    FailureKind,
    ObjectiveRef,
    OutcomeState,
    TrialJob,
    TrialOutcome,
)
from hptune.trial import Reporter, Trial, TrialDiverged, TrialPruned, is_oom_error


def resolve_objective(ref: ObjectiveRef) -> Callable[..., Any]:
    """Turn ``"package.module:function"`` into the function; pass callables through."""
    if callable(ref):
        return ref
    if not isinstance(ref, str) or ref.count(":") != 1:
        raise ConfigError(
            f"objective must be a callable or a 'package.module:function' string, got {ref!r}."
        )
    module_name, _, attr = ref.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"cannot import module {module_name!r} of objective {ref!r}: {exc}"
        ) from exc
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ConfigError(
                f"module {module_name!r} has no attribute {attr!r} (objective {ref!r})."
            )
        obj = getattr(obj, part)
    if not callable(obj):
        raise ConfigError(f"objective {ref!r} is not callable.")
    return obj


def failure_kind(exc: BaseException) -> FailureKind:
    """The kind of failure an exception raised by an objective stands for."""
    if isinstance(exc, TrialDiverged):
        return FailureKind.DIVERGED
    if isinstance(exc, MemoryError) or is_oom_error(exc):
        return FailureKind.OUT_OF_MEMORY
    return FailureKind.ERROR


def run_job(job: TrialJob, reporter: Reporter, worker: str | None = None) -> TrialOutcome:
    """Run the objective of ``job`` in the trial's environment (threads, seeded global
    generators: :func:`~hptune.execution._environment.apply_environment`); never raises
    for the objective's own errors.

    ``KeyboardInterrupt`` and ``SystemExit`` propagate: they stop the runner, not the trial.
    """
    runtime = apply_environment(job.seed, job.threads).to_dict()
    start = time.perf_counter()
    trial = Trial(job.number, job.config, job.seed, reporter)

    def outcome(state: OutcomeState, **kw: Any) -> TrialOutcome:
        return TrialOutcome(
            number=job.number,
            state=state,
            duration_s=time.perf_counter() - start,
            last_step=trial.last_step,
            worker=worker,
            attrs=dict(trial.attrs),
            runtime=runtime,
            **kw,
        )

    try:
        fn = resolve_objective(job.objective)
        value = fn(job.config, trial)
    except TrialPruned:
        return outcome(OutcomeState.PRUNED)
    except Exception as exc:  # the objective's failure is the trial's, not the study's
        return outcome(
            OutcomeState.FAILED,
            reason=one_line(exc),
            traceback=tb.format_exc(),
            kind=failure_kind(exc),
        )
    try:
        if isinstance(value, (bool, str, bytes)):  # float() takes them; a value they are not
            raise TypeError
        value = float(value)
    except (TypeError, ValueError):
        return outcome(
            OutcomeState.FAILED,
            reason=f"objective returned {type(value).__name__} {value!r}, expected a float",
            kind=FailureKind.ERROR,
        )
    return outcome(OutcomeState.COMPLETE, value=value)
