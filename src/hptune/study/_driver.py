"""The driver: the ask/tell loop between a strategy, an executor and the storage.

The driver is the only writer to storage in a run (so SQLite works with many workers). Per
trial it asks Optuna for a trial, draws the config from the space, records the trial's seed,
config, config hash, environment and stage, and submits the job; while jobs run it relays
reports to the pruner; when one ends it tells Optuna the outcome:

* COMPLETE with a finite value: COMPLETE.
* COMPLETE with NaN or inf, or FAILED with :class:`hptune.trial.TrialDiverged`: FAILED with
  its reason (``"objective returned nan"``), and marked so that the sampler learns the region
  is bad (see ``hptune.study._view``).
* PRUNED: PRUNED (Optuna keeps the last reported value).
* FAILED (any other exception, a crashed worker): FAILED with the one-line reason and the
  traceback in user attributes; the study goes on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from hptune.execution.base import Executor, OutcomeState, TrialJob, TrialOutcome
from hptune.study import _records
from hptune.trial import TrialDiverged, is_finite

if TYPE_CHECKING:
    from hptune.study._study import Study

#: Study user attribute collecting the notes strategies return (boundary warnings...).
NOTES_ATTR = "hptune.notes"


class Driver:
    """Runs trials of ``study`` through ``executor`` until a limit is reached.

    Args:
        study: The hptune study.
        objective: ``objective(config, trial) -> float`` or ``"module:function"``.
        executor: Where trials run; started here and shut down at the end.
        n_trials: Trials to start in this run (None: no limit).
        timeout_s: No trial starts after this many seconds (running ones finish).
        listener: Optional ``trial_started(number, config)`` / ``trial_finished(record)``.
    """

    def __init__(
        self,
        study: Study,
        objective: Callable[..., float] | str,
        executor: Executor,
        n_trials: int | None,
        timeout_s: float | None,
        listener: Any = None,
    ) -> None:
        self.study = study
        self.listener = listener
        self.ostudy = study.optuna_study
        self.objective = objective
        self.executor = executor
        self.n_trials = n_trials
        self.deadline = None if timeout_s is None else time.monotonic() + timeout_s
        self.running: dict[int, optuna.Trial] = {}
        self.n_started = 0
        self.exhausted = False
        self.env = _records.capture_environment()

    def run(self) -> None:
        """The loop. On any exception (Ctrl-C included) every running trial is recorded as
        FAILED ``"interrupted"`` before the exception propagates."""
        self.study.strategy.begin(self.ostudy, self.study.space, self.n_trials)
        self.executor.start(self.on_report)
        try:
            while True:
                self._fill()
                if not self.running:
                    break
                for outcome in self.executor.wait(None):
                    self._tell(outcome)
        except BaseException:
            self._abort()
            raise
        self.executor.shutdown()
        self._record_notes(self.study.strategy.finish(self.ostudy))

    def on_report(self, number: int, step: int, value: float) -> bool:
        """Relay ``trial.report(step, value)`` to Optuna; True when the pruner says stop."""
        otrial = self.running.get(number)
        if otrial is None:
            return False
        otrial.report(value, step)
        return otrial.should_prune()

    def _may_start(self) -> bool:
        if self.exhausted or (self.n_trials is not None and self.n_started >= self.n_trials):
            return False
        return self.deadline is None or time.monotonic() < self.deadline

    def _fill(self) -> None:
        while len(self.running) < self.executor.capacity and self._may_start():
            stage = self.study.strategy.next_stage(self.ostudy, frozenset(self.running))
            if stage is None:
                self.exhausted = not self.running
                return
            self._start(stage)

    def _start(self, stage: str) -> None:
        otrial = self.ostudy.ask()
        self.n_started += 1
        try:
            config = self.study.space.sample(otrial)
        except Exception:
            # A space that cannot be sampled is hptune's or the caller's error, not the
            # objective's: record it on the trial and stop the study.
            self.ostudy.tell(otrial, state=TrialState.FAIL)
            raise
        seed = _records.derive_trial_seed(self.study.seed, otrial.number)
        for key, value in (
            (_records.SEED, seed),
            (_records.CONFIG, config),
            (_records.CONFIG_HASH, _records.config_hash(config)),
            (_records.ENV, self.env),
            (_records.STAGE, stage),
        ):
            otrial.set_user_attr(key, value)
        self.running[otrial.number] = otrial
        self.executor.submit(TrialJob(otrial.number, config, seed, self.objective))
        if self.listener is not None:
            self.listener.trial_started(otrial.number, config)

    def _tell(self, outcome: TrialOutcome) -> None:
        otrial = self.running.pop(outcome.number, None)
        if otrial is None:
            return
        frozen = self._tell_optuna(otrial, outcome)
        if self.listener is not None:
            self.listener.trial_finished(_records.record_from_frozen(frozen))

    def _tell_optuna(self, otrial: optuna.Trial, outcome: TrialOutcome) -> FrozenTrial:
        for key, value in outcome.attrs.items():
            otrial.set_user_attr(key, _jsonable(value))
        if outcome.state is OutcomeState.PRUNED:
            return self.ostudy.tell(otrial, state=TrialState.PRUNED)
        if outcome.state is OutcomeState.COMPLETE and is_finite(outcome.value):
            return self.ostudy.tell(otrial, float(outcome.value))
        if outcome.state is OutcomeState.COMPLETE:
            return self._fail(otrial, f"objective returned {outcome.value}", None, penalize=True)
        reason = outcome.reason or "failed"
        diverged = reason.startswith(f"{TrialDiverged.__name__}:")
        return self._fail(otrial, reason, outcome.traceback, penalize=diverged)

    def _fail(
        self, otrial: optuna.Trial, reason: str, traceback: str | None, penalize: bool
    ) -> FrozenTrial:
        otrial.set_user_attr(_records.FAILURE, reason)
        if traceback:
            otrial.set_user_attr(_records.TRACEBACK, traceback)
        if penalize:
            otrial.set_user_attr(_records.PENALIZE, True)
        return self.ostudy.tell(otrial, state=TrialState.FAIL)

    def _abort(self) -> None:
        outcomes = self.executor.shutdown()
        for outcome in outcomes:
            self._tell(outcome)
        for number in list(self.running):
            self._fail(self.running.pop(number), "interrupted", None, penalize=False)

    def _record_notes(self, notes: list[str]) -> None:
        if notes:
            old = self.ostudy.user_attrs.get(NOTES_ATTR, [])
            self.ostudy.set_user_attr(NOTES_ATTR, old + [n for n in notes if n not in old])


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value
