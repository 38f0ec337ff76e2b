"""The driver: the ask/tell loop between a strategy, an executor and the storage.

The driver is the only writer to storage in a run (so SQLite works with many workers). Per
trial it asks Optuna for a trial, draws the config from the space, records the trial's seed,
config, config hash, environment and stage, and submits the job; while jobs run it relays
reports to the pruner; when one ends it tells Optuna the outcome:

* COMPLETE with a finite value: COMPLETE.
* COMPLETE with NaN or inf: FAILED of kind ``DIVERGED`` (``"objective returned nan"``).
* PRUNED: PRUNED (Optuna keeps the last reported value).
* FAILED: FAILED with its kind, one-line reason and traceback in user attributes; the
  study goes on. The kind decides the rest: the sampler learns from a divergence (see
  ``hptune.study._view``), a crashed worker's trial is enqueued again when
  ``max_retries`` allows (see ``_liveness``).

Execution (see ``docs/architecture.md``): a background thread refreshes the heartbeats of
the driver's running trials, and the driver waits on the executor with a timeout of
``heartbeat_interval``, so that between outcomes it reaps stale trials of dead drivers
(``_liveness``). A trial another driver reaped anyway is stopped at its next report and its
outcome dropped, with a warning. Several drivers may share one study:
queued trials are popped race-free and the ``max_total_trials`` budget is checked against
storage before each ask (``_budget``). ``deterministic=True`` runs in fixed batches
(``_batch``). Any exception in the loop (Ctrl-C, SIGTERM turned into KeyboardInterrupt by
``optimize``) records every running trial as FAILED ``"interrupted"`` before propagating.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import enum
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from hptune.exceptions import HptuneError
from hptune.execution.base import Executor, FailureKind, OutcomeState, TrialJob, TrialOutcome
from hptune.space import Space
from hptune.study import _budget, _confirm, _optuna, _records
from hptune.study._batch import BatchPruner
from hptune.study._execution import signals_deferred
from hptune.study._liveness import Liveness, new_driver_id
from hptune.study._storage import is_storage_error, sqlite_file, storage_error_line
from hptune.study.strategies import Strategy

logger = logging.getLogger("hptune.study")

#: Study user attribute collecting the notes strategies return (boundary warnings...).
NOTES_ATTR = "hptune.notes"
#: Study user attribute recording why the last ``optimize`` run that started a trial stopped
#: (see _records.STOP).
STOP_ATTR = _records.STOP


class StopReason(str, enum.Enum):
    """Why an ``optimize`` run stopped starting trials."""

    TRIALS = "trials"  #: its ``n_trials`` had started
    TIMEOUT = "timeout"  #: its ``timeout`` passed (running trials then finished)
    BUDGET = "budget"  #: the study's trials that count reached ``max_total_trials``
    BUDGET_SPENT = "budget_spent"  #: ... before this run could start any
    EXHAUSTED = "exhausted"  #: the strategy had nothing left to run (a finished grid)
    INTERRUPTED = "interrupted"  #: Ctrl-C, SIGTERM, or an error in the run
    STORAGE = "storage_failed"  #: the storage failed (a full disk, a corrupt database)


@dataclasses.dataclass(frozen=True)
class RunLimits:
    """How one ``optimize`` call runs (see :meth:`hptune.study.Study.optimize`)."""

    n_trials: int | None = None
    timeout_s: float | None = None
    trial_timeout_s: float | None = None
    max_total_trials: int | None = None
    max_retries: int = 0
    deterministic: bool = False
    batch_size: int = 4
    heartbeat_interval: float = 10.0
    grace_period: float = 60.0


class Driver:
    """Runs trials of a study through ``executor`` until a limit is reached.

    It is handed what it needs of the study, and never calls back into it.

    Args:
        ostudy: The Optuna study the trials are stored in (its sampler and pruner set).
        space: The search space the configs are drawn from.
        strategy: The strategy (stages, whether it runs only queued trials, notes).
        seed: The study seed, from which each new trial's seed derives.
        objective: ``objective(config, trial) -> float`` or ``"module:function"``.
        executor: Where trials run; started here and shut down at the end.
        limits: Trial counts, timeouts, retries, heartbeats, deterministic batches.
        listener: Optional ``trial_started(number, config)`` / ``trial_finished(record)``.
        on_first_new_trial: Called once with the number of the first trial this driver
            creates (not one popped from the queue), before it is sampled: the study
            re-seeds its sampler by it (see ``Study.first_new_trial``).
        confirm: Re-train the search's best configs with fresh seeds at the end of
            ``limits.max_total_trials`` (see ``_confirm``); the search then stops
            ``confirm.n_trials`` trials earlier.
    """

    def __init__(
        self,
        ostudy: optuna.Study,
        space: Space,
        strategy: Strategy,
        seed: int,
        objective: Callable[..., float] | str,
        executor: Executor,
        limits: RunLimits,
        listener: Any = None,
        on_first_new_trial: Callable[[int], None] | None = None,
        confirm: _confirm.Confirm | None = None,
    ) -> None:
        self.ostudy = ostudy
        self.space = space
        self.strategy = strategy
        self.seed = seed
        self.listener = listener
        self.on_first_new_trial = on_first_new_trial
        self.objective = objective
        self.executor = executor
        self.limits = limits
        self.deadline = None if limits.timeout_s is None else time.monotonic() + limits.timeout_s
        self.running: dict[int, optuna.Trial] = {}
        self.jobs: dict[int, TrialJob] = {}  # what each running trial was given
        self.stages: dict[int, str] = {}  # the stage each running trial was asked in
        self.held: dict[int, TrialOutcome] = {}  # deterministic mode: finished, not yet told
        self.n_started = 0
        self.last_number: int | None = None  # of the last trial this driver asked
        self.stop: StopReason | None = None
        self.confirm = confirm
        self.search_over = False  # the search's share of the budget is spent (confirm)
        self.confirming = False  # the confirmation's trials run now
        self.env = _records.capture_environment()
        self.env_id: str | None = None  # stored in the study when the run starts
        self.liveness = Liveness(
            self.ostudy,
            new_driver_id(),
            limits.heartbeat_interval,
            limits.grace_period,
            limits.max_retries,
            study_seed=seed,
            complete=self._complete,
        )
        # A grid must never fall back to a fresh (random) trial when its queue is empty.
        self.queue_only = strategy.queue_only
        self.db_file = _database_file(self.ostudy)

    def run(self) -> StopReason:
        """Run trials until a limit is reached; returns why it stopped (also recorded in
        the study's ``hptune.stop``).

        Raises:
            HptuneError: The storage failed (a full disk, a corrupt database): one line
                saying so. Finished trials are kept; the running ones stay RUNNING in
                storage, and the next driver on this host reaps them at once.
            KeyboardInterrupt: Ctrl-C or SIGTERM, after the running trials are recorded.
        """
        try:
            self.env_id = _records.store_env(self.ostudy, self.env)
            self.strategy.begin(self.ostudy, self.space, self.limits.n_trials)
            self.liveness.reap()
            total = self.limits.max_total_trials
            if total is None or _budget.n_used(self.ostudy) < total:
                # What an earlier run owes; a spent budget runs none of it, and its queued
                # retries would only wait in the study ("waiting 3" in status).
                self.liveness.requeue()
            self.liveness.start()
            try:
                # No workers are started for a run with nothing to do (stop set); one that
                # waits for other drivers' search trials before confirming goes on.
                if self._may_start() or self.stop is None:
                    self.executor.start(self.on_report)
                    self._run_and_shut_down()
            finally:
                self.liveness.stop()
            self._record_notes(self.strategy.finish(self.ostudy))
        except Exception as exc:
            if not is_storage_error(exc):
                raise
            raise HptuneError(
                f"the study's storage failed: {storage_error_line(exc)}. Trials finished "
                "before are kept; free disk space or restore the database, then resume."
            ) from exc
        assert self.stop is not None, "a run ends only once a limit says stop"
        self._record_stop(self.stop)
        return self.stop

    def _run_and_shut_down(self) -> None:
        try:
            if self.limits.deterministic:
                self._run_batches()
            else:
                self._run_async()
            for outcome in self.executor.shutdown():
                self._tell(outcome)
        except BaseException as exc:
            self.stop = StopReason.STORAGE if is_storage_error(exc) else StopReason.INTERRUPTED
            # A second Ctrl-C must not cut the recording of the running trials, or of why
            # the run stopped, short: it is held back until both are recorded, then raised.
            with signals_deferred():
                self._abort()
                with contextlib.suppress(Exception):  # the storage may be what failed
                    self._record_stop(self.stop)
            raise

    def _record_stop(self, reason: StopReason) -> None:
        """Record why this run stopped; a run that started no trial (its budget already
        spent, a finished grid) leaves the record of the run before, which says when and
        why the study's trials really stopped."""
        if not self.n_started and STOP_ATTR in self.ostudy.user_attrs:
            return
        stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        counted = sum(_budget.counts(t) for t in self.ostudy.get_trials(deepcopy=False))
        self.ostudy.set_user_attr(
            STOP_ATTR, {"reason": reason.value, "at": stamp, "trials": counted}
        )

    def on_report(self, number: int, step: int, value: float) -> bool:
        """Relay ``trial.report(step, value)`` to Optuna; True when the pruner says stop
        (or when the trial was reaped by another driver: running on is pointless)."""
        otrial = self.running.get(number)
        if otrial is None:
            return False
        try:
            otrial.report(value, step)
        except optuna.exceptions.UpdateFinishedTrialError:
            return True
        if self.stages.get(number) == _confirm.STAGE:
            return False  # a fresh-seed re-training runs in full
        return otrial.should_prune()

    # -- loops ---------------------------------------------------------------------------

    def _run_async(self) -> None:
        while True:
            self._fill()
            if not self.running:
                if self.stop is None:
                    self._await_other_drivers()
                    continue
                return
            for outcome in self.executor.wait(self.limits.heartbeat_interval):
                self._tell(outcome)
            self._keep_alive()

    def _run_batches(self) -> None:
        old_pruner = self.ostudy.pruner
        batch_pruner = BatchPruner(old_pruner)
        self.ostudy.pruner = batch_pruner
        try:
            while True:
                jobs = self._ask_batch()
                if not jobs and self.stop is None:
                    self._await_other_drivers()
                    continue
                if not jobs:
                    return
                batch_pruner.cutoff = jobs[0].number
                self._run_batch(jobs)
        finally:
            self.ostudy.pruner = old_pruner

    def _ask_batch(self) -> list[TrialJob]:
        jobs: list[TrialJob] = []
        while len(jobs) < self.limits.batch_size and self._may_start():
            job = self._next_job()
            if job is None:
                # With jobs, the strategy waits for this batch (coarse-to-fine's coarse
                # stage); without, nothing is left but perhaps the confirmation.
                if jobs or self.running or not self._none_left():
                    break
                continue
            jobs.append(job)
        return jobs

    def _run_batch(self, jobs: list[TrialJob]) -> None:
        queue = list(jobs)
        while queue or self.executor.n_running:
            while queue and self.executor.n_running < self.executor.capacity:
                self._submit(queue.pop(0))
            for outcome in self.executor.wait(self.limits.heartbeat_interval):
                self.held[outcome.number] = outcome
            self._keep_alive()
        for number in sorted(self.held):
            self._tell(self.held.pop(number))

    def _keep_alive(self) -> None:
        self.liveness.maybe_reap()

    def _await_other_drivers(self) -> None:
        """Nothing of this driver runs and the confirmation waits for other drivers'
        search trials to end (or to be reaped): wait a moment, keeping watch."""
        time.sleep(min(1.0, self.limits.heartbeat_interval))
        self._keep_alive()

    # -- starting trials -------------------------------------------------------------------

    def _may_start(self) -> bool:
        """Whether another trial may start; when not, :attr:`stop` says why, or (stop
        None) the confirmation waits for search trials, here or in other drivers, to end."""
        limits = self.limits
        if self.stop is None:
            total = self._search_total()
            if limits.n_trials is not None and self.n_started >= limits.n_trials:
                self.stop = StopReason.TRIALS
            elif self.deadline is not None and time.monotonic() >= self.deadline:
                self.stop = StopReason.TIMEOUT
            elif not self.confirming and (
                self.search_over or (total is not None and self._budget_spent(total))
            ):
                self.search_over = True
                self._after_search()
        return self.stop is None and (self.confirming or not self.search_over)

    def _search_total(self) -> int | None:
        """The trials the search may use: the budget less the confirmation's share."""
        total = self.limits.max_total_trials
        if total is None or self.confirm is None:
            return total
        return total - self.confirm.n_trials

    def _budget_spent(self, total: int) -> bool:
        """Step 1 of the shared budget (see ``_budget``): the study is read (O(trials))
        only when this driver's last trial was near the budget, or before its first ask;
        otherwise the check after the ask (``_budget.within``) guards the budget alone."""
        if self.last_number is not None and self.last_number + 1 < total:
            return False
        return _budget.n_used(self.ostudy, search_only=self.confirm is not None) >= total

    def _after_search(self) -> None:
        """The search's share is spent: stop, or, once the search trials of every driver
        have finished, begin the confirmation (picked from all of them)."""
        if self.confirm is None:
            self.stop = self._budget_reason()
        elif not self.running and not _confirm.search_runs(self.ostudy):
            self.confirming = True
            if not _confirm.plan(self.ostudy, self.confirm):  # every slot ran or runs
                self.stop = self._confirmed_reason()

    def _budget_reason(self) -> StopReason:
        """The budget is spent: by this run's trials, or before it could start one."""
        return StopReason.BUDGET if self.n_started else StopReason.BUDGET_SPENT

    def _none_left(self) -> bool:
        """Nothing could start and nothing runs: True when the confirmation began just
        now (ask again), else :attr:`stop` says why the run ends."""
        if self.stop is None and self.confirm is not None and not self.confirming:
            self.search_over = True
            self._after_search()
            return self.confirming
        if self.stop is None:
            self.stop = self._confirmed_reason() if self.confirming else StopReason.EXHAUSTED
        return False

    def _confirmed_reason(self) -> StopReason:
        """The confirmation has nothing left to run: the budget is spent, or (fewer complete
        configs than ``top``) it re-trained every config there was, with trials left."""
        total = self.limits.max_total_trials
        if total is not None and _budget.n_used(self.ostudy) < total:
            return StopReason.EXHAUSTED
        return self._budget_reason()

    def _fill(self) -> None:
        while len(self.running) < self.executor.capacity and self._may_start():
            job = self._next_job()
            if job is None:
                if self.running or not self._none_left():
                    return
                continue
            self._submit(job)

    def _next_job(self) -> TrialJob | None:
        """The next trial to run: a confirmation's, or what the strategy's stage asks."""
        if self.confirming:
            return self._ask(_confirm.STAGE)
        stage = self.strategy.next_stage(self.ostudy, frozenset(self.running))
        return None if stage is None else self._ask(stage)

    def _ask(self, stage: str) -> TrialJob | None:
        """Start a trial in storage and draw its config; None when there is none to start
        (a grid's queue is empty, or the shared budget was taken by another driver)."""
        with signals_deferred():  # a trial in storage is tracked in self.running, or none is
            return self._ask_now(stage)

    def _ask_now(self, stage: str) -> TrialJob | None:
        if self.confirming:  # only the confirmation's queued trials, never a new one
            trial_id = _budget.pop_waiting(self.ostudy, only=_confirm.is_repeat)
            if trial_id is None:
                return None
            otrial = _optuna.live_trial(self.ostudy, trial_id)
            # The whole budget holds here: a retry of a slot whose worker died (that
            # counts), or slots planned by an earlier run with another budget or confirm,
            # wait for a run with room rather than run past it.
            if not _budget.within(self.ostudy, otrial.number, self.limits.max_total_trials):
                _budget.put_back(self.ostudy, trial_id)
                self.stop = self._budget_reason()
                return None
            return self._start(otrial, stage, False)
        only = _confirm.is_search if self.confirm is not None else None
        trial_id = _budget.pop_waiting(self.ostudy, unique=self.queue_only, only=only)
        while trial_id is None and self.queue_only and self.strategy.refill(self.ostudy):
            # topped up: pop again
            trial_id = _budget.pop_waiting(self.ostudy, unique=True, only=only)
        if trial_id is None and self.queue_only:
            return None
        created = trial_id is None
        if trial_id is None:
            # Created with its stage and this driver's mark: one write, not three.
            early = {_records.STAGE: stage} if self.strategy.reads_running_stages else {}
            trial_id = _optuna.new_trial(self.ostudy, early, self.liveness.live_attr())
            if self.on_first_new_trial is not None:  # one storage read, once
                storage = _optuna.storage(self.ostudy)
                self.on_first_new_trial(storage.get_trial_number_from_id(trial_id))
                self.on_first_new_trial = None
        otrial = _optuna.live_trial(self.ostudy, trial_id)
        self.last_number = otrial.number
        total, search_only = self._search_total(), self.confirm is not None
        if not _budget.within(self.ostudy, otrial.number, total, search_only):
            _budget.put_back(self.ostudy, trial_id)
            if self.confirm is None:
                self.stop = StopReason.BUDGET
            self.search_over = True
            return None
        return self._start(otrial, stage, created)

    def _start(self, otrial: optuna.Trial, stage: str, created: bool) -> TrialJob:
        """Claim a trial this driver created or popped, and draw its config."""
        self.liveness.claim(_optuna.trial_id(otrial), marked=created)
        if not created and self.strategy.reads_running_stages:
            otrial.set_user_attr(_records.STAGE, stage)
        self.n_started += 1
        return self._prepare(otrial, stage)

    def _prepare(self, otrial: optuna.Trial, stage: str) -> TrialJob:
        try:
            config = self.space.sample(otrial)
        except Exception:
            # A space that cannot be sampled is hptune's or the caller's error, not the
            # objective's: record it on the trial and stop the study.
            self.ostudy.tell(otrial, state=TrialState.FAIL)
            raise
        # A retry keeps the seed of the trial it repeats (enqueued with it).
        seed = otrial.user_attrs.get(_records.SEED)
        if seed is None:
            seed = _records.derive_trial_seed(self.seed, otrial.number)
        # Nothing is written here: the params are in storage (sampled), the seed derives
        # from the trial's number, and the trial's record is written once, when it ends.
        job = TrialJob(otrial.number, config, seed, self.objective, self.limits.trial_timeout_s)
        self.running[otrial.number] = otrial
        self.jobs[otrial.number] = job
        self.stages[otrial.number] = stage
        return job

    def _complete(self, params: dict[str, Any]) -> bool:
        """Whether ``params`` make a whole config of the space (a trial was sampled)."""
        try:
            self.space.sample(optuna.trial.FixedTrial(params))
        except Exception:
            return False
        return True

    def _submit(self, job: TrialJob) -> None:
        self.executor.submit(job)
        if self.listener is not None:
            self.listener.trial_started(job.number, job.config)

    # -- finishing trials ------------------------------------------------------------------

    def _tell(self, outcome: TrialOutcome) -> None:
        with signals_deferred():  # popped from self.running means told
            self._tell_now(outcome)

    def _tell_now(self, outcome: TrialOutcome) -> None:
        otrial = self.running.pop(outcome.number, None)
        if otrial is None:
            return
        if self.db_file is not None and not self.db_file.exists():
            # SQLite writes on into a deleted file, which is gone once the run ends: the
            # results would be lost with every message saying they were kept.
            raise HptuneError(
                f"the study's database file {self.db_file} was deleted or moved during the "
                "run; what it held since is lost. Restore it from a backup, or run again."
            )
        job = self.jobs.pop(outcome.number)
        self.liveness.release(_optuna.trial_id(otrial))
        try:
            kind = self._tell_optuna(otrial, job, outcome)
        except (optuna.exceptions.UpdateFinishedTrialError, ValueError):
            if not self._finished_elsewhere(otrial):
                raise
            return
        # The told trial is read back only when something needs it (one storage read of
        # the whole trial): a failure that may be retried, or a listener.
        retry = kind is not None and self.liveness.may_retry(kind)
        if not retry and self.listener is None:
            return
        frozen = _optuna.storage(self.ostudy).get_trial(_optuna.trial_id(otrial))
        if retry:
            self.liveness.retry(frozen, kind)  # type: ignore[arg-type]
        if self.listener is not None:
            self.listener.trial_finished(
                _records.record_from_frozen(frozen, {_records.ENV_PREFIX + self.env_id: self.env})
            )

    def _facts(self, job: TrialJob, outcome: TrialOutcome | None = None) -> dict[str, Any]:
        """What the trial's record says (one write when it ends)."""
        facts: dict[str, Any] = {
            "stage": self.stages.pop(job.number, None),
            "seed": job.seed,
            "config": job.config,
            "config_hash": _records.config_hash(job.config),
            "env": self.env_id,
        }
        if outcome is not None:
            facts.update(runtime=outcome.runtime, duration=outcome.duration_s)
        return facts

    def _tell_optuna(
        self, otrial: optuna.Trial, job: TrialJob, outcome: TrialOutcome
    ) -> FailureKind | None:
        """Record and tell the outcome; returns its failure kind (None unless FAILED)."""
        for key, value in outcome.attrs.items():
            otrial.set_user_attr(key, _jsonable(value))
        outcome = outcome.settled()
        facts = self._facts(job, outcome)
        if outcome.state is OutcomeState.FAILED:
            assert outcome.kind is not None  # settled
            reason = outcome.reason or outcome.kind.value
            self._fail(otrial, outcome.kind, reason, outcome.traceback, **facts)
            return outcome.kind
        # A trial of this driver has no record yet: it is written once, here ({}: nothing
        # to merge, and no read of the trial's attributes).
        _records.write_record(_optuna.storage(self.ostudy), _optuna.trial_id(otrial), {}, **facts)
        if outcome.state is OutcomeState.PRUNED:
            _optuna.tell(self.ostudy, otrial, state=TrialState.PRUNED)
        else:
            _optuna.tell(self.ostudy, otrial, float(outcome.value))  # type: ignore[arg-type]
        return None

    def _finished_elsewhere(self, otrial: optuna.Trial) -> bool:
        """Whether another driver finished (reaped) this trial; warns when it did."""
        frozen = _optuna.storage(self.ostudy).get_trial(_optuna.trial_id(otrial))
        if not frozen.state.is_finished():
            return False
        logger.warning(
            "trial %d was finished by another driver (%s: %s) while this one ran it; "
            "this run's outcome is dropped",
            otrial.number,
            frozen.state.name,
            _records.fact(frozen.user_attrs, _records.FAILURE, ""),
        )
        return True

    def _fail(
        self,
        otrial: optuna.Trial,
        kind: FailureKind,
        reason: str,
        traceback: str | None = None,
        **facts: Any,
    ) -> None:
        storage, trial_id = _optuna.storage(self.ostudy), _optuna.trial_id(otrial)
        _records.write_failure(
            storage, trial_id, otrial.user_attrs, kind, reason, traceback, **facts
        )
        _optuna.tell(self.ostudy, otrial, state=TrialState.FAIL)

    def _abort(self) -> None:
        """Stop the executor and record what ran as interrupted; when the storage is what
        failed, the executor is still stopped and the records are left to a later run."""
        outcomes = self.executor.shutdown()
        try:
            for number in sorted(self.held):
                self._tell(self.held.pop(number))
            for outcome in outcomes:
                self._tell(outcome)
            for number in list(self.running):
                otrial, job = self.running.pop(number), self.jobs.pop(number)
                self.liveness.release(_optuna.trial_id(otrial))
                with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError, ValueError):
                    facts = self._facts(job)
                    self._fail(otrial, FailureKind.INTERRUPTED, "interrupted", **facts)
        except Exception as exc:
            if not is_storage_error(exc):
                raise
            logger.warning("could not record the interrupted trials: %s", storage_error_line(exc))

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


def _database_file(ostudy: optuna.Study) -> Path | None:
    """The SQLite file a study lives in (resolved: a later chdir changes nothing); None for
    other storages."""
    url = _optuna.database_url(ostudy)
    path = None if url is None else sqlite_file(url.render_as_string(hide_password=False))
    return None if path is None else path.resolve()
