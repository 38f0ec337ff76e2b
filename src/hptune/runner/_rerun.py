"""Re-run one trial of a study with its config and seed, and compare with what it recorded."""

from __future__ import annotations

import dataclasses
from typing import Any

from hptune.exceptions import HptuneError
from hptune.execution.base import FailureKind
from hptune.runner._base import make_objective, stored_spec
from hptune.study import Study, TrialRecord


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
        kind: The re-run's failure kind, if it failed.
        original_kind: The trial's recorded failure kind, if it failed.
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
    kind: FailureKind | None = None
    original_kind: FailureKind | None = None

    @property
    def identical(self) -> bool:
        """Whether the re-run did what the trial did: the same value (at the pruned step,
        for a pruned trial), or the same failure: of the same kind, with the same message
        (a re-run reproduces its output, and the message is output, numbers included)."""
        if self.state != self.original_state:
            return False
        if self.state == "FAILED":
            return self.kind == self.original_kind and self.reason == self.original_reason
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
    unfinished = (
        record.state not in ("COMPLETE", "PRUNED", "FAILED") or record.failure_kind in NOT_COUNTED
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
    from hptune.tasks import resolve_task

    record = check_rerun(study, number)
    spec = stored_spec(study)
    # A task this process cannot import (run from another folder, a missing package) is
    # an error in the rerun's setting, not a difference in the trial: say so up front.
    resolve_task(spec.task)
    pruned_at = max(record.intermediate_values) if record.state == "PRUNED" else None
    reported: dict[int, float] = {}

    def reporter(step: int, value: float) -> bool:
        reported[step] = value
        return pruned_at is not None and step >= pruned_at

    # The threads the trial ran with (a float sum's last bits depend on them); trials
    # recorded before runtimes were keep this process's.
    threads = (record.runtime or {}).get("threads")
    job = TrialJob(number, record.config, record.seed, make_objective(spec), threads=threads)
    outcome = run_job(job, reporter, worker="rerun").settled()  # as the driver records it
    state, reason, new = outcome.state.name, outcome.reason, outcome.value
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
        kind=outcome.kind,
        original_kind=record.failure_kind,
    )
