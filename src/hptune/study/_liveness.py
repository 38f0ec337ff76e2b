"""Liveness of drivers: heartbeats, reaping the trials of a dead driver, and retries.

A driver that dies without a chance to clean up (SIGKILL, power loss, a lost machine)
leaves its trials RUNNING in storage for ever. Every driver therefore

* stamps each trial it runs with its driver id and a heartbeat (wall-clock seconds since
  the epoch, in the trial's *system* attributes ``hptune.driver`` / ``hptune.heartbeat``, so
  they never show up among a record's ``attrs``), refreshed every ``heartbeat_interval``
  seconds by a background thread of the driver, so that a long inline trial (which blocks
  the driver's loop) or a trial that reports rarely stays alive as long as its driver is;
* reaps, when it starts and then every ``heartbeat_interval``, every RUNNING trial of
  another driver whose heartbeat is older than ``grace_period``: the trial becomes FAILED
  with the reason ``"stale: its driver stopped (no heartbeat for N s)"``;
* with ``max_retries > 0``, enqueues a reaped trial (and a trial whose worker process died)
  again with the same parameters and the same seed, recording ``hptune.retry_of`` (the
  number it repeats) and ``hptune.attempt`` (1 for the first retry). A trial reaped before
  its config was recorded never reached a worker and is not retried: it does not count
  against the budget, so the study simply asks a new one.

We keep our own heartbeat rather than Optuna's ``RDBStorage(heartbeat_interval=...)``:
Optuna's refreshes from a thread of ``Study.optimize`` only, works on RDB storages only,
and its ``fail_stale_trials`` records no reason. Ours uses only public storage calls, so it
works on every storage. Heartbeats compare wall clocks of different machines: keep them in
sync (NTP) and ``grace_period`` well above any skew.

Reaping is race-free enough for several reapers: marking a trial FAILED goes through
``storage.set_trial_state_values``, which raises ``UpdateFinishedTrialError`` for the loser.
A live driver whose trial was reaped anyway (its storage was unreachable for longer than
the grace period, say) finds the trial finished when it reports or tells: the trial is
stopped and its outcome dropped with a warning; the reaped record (and its retry) stand.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from hptune.execution.base import FailureKind
from hptune.study import _optuna, _records

logger = logging.getLogger("hptune.study")

#: Trial system attribute ``{"driver": id, "beat": epoch seconds}``: whose trial it is and
#: its last heartbeat, in one attribute (one write per claim or beat).
LIVE = "hptune.live"
#: The two facts as attributes of their own, as studies written before LIVE hold them.
HEARTBEAT = "hptune.heartbeat"
DRIVER = "hptune.driver"
RETRY_OF = "hptune.retry_of"
ATTEMPT = "hptune.attempt"
#: Failures worth another attempt: nothing in the config caused them (a worker that died
#: is retried too: its death may be the machine's, and the retry budget bounds the cost).
RETRYABLE = frozenset({FailureKind.STALE, FailureKind.WORKER_DIED, FailureKind.INTERRUPTED})


def new_driver_id() -> str:
    """``host:pid:random``: unique per driver run, readable in a database browser."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Liveness:
    """Heartbeats for one driver's trials and reaping of other drivers' stale ones.

    Args:
        ostudy: The Optuna study.
        driver_id: This driver's id (see :func:`new_driver_id`).
        heartbeat_interval: Seconds between heartbeats of a running trial.
        grace_period: Seconds without a heartbeat after which a trial is stale.
        max_retries: Attempts after the first for a stale or crashed trial.
        study_seed: The study's seed, from which a trial's seed derives when a retried
            trial has none recorded (it was reaped before it ended).
        complete: Whether a trial's sampled params make a whole config (a trial reaped
            while it was being sampled never ran, and is not retried); default: any params.

    Example:
        >>> study = optuna.create_study()
        >>> live = Liveness(study, "me", heartbeat_interval=1.0, grace_period=5.0)
        >>> live.reap()
        []
    """

    def __init__(
        self,
        ostudy: optuna.Study,
        driver_id: str,
        heartbeat_interval: float,
        grace_period: float,
        max_retries: int = 0,
        study_seed: int | None = None,
        complete: Callable[[dict[str, Any]], bool] | None = None,
    ) -> None:
        self.ostudy = ostudy
        self.study_seed = study_seed
        self.complete = complete or bool
        self.storage = _optuna.storage(ostudy)
        self.driver_id = driver_id
        self.heartbeat_interval = heartbeat_interval
        self.grace_period = grace_period
        self.max_retries = max_retries
        self._last_reap = 0.0
        self._mine: set[int] = set()  # trial ids this driver runs; guarded by _lock
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def live_attr(self) -> dict[str, Any]:
        """The system attributes that mark a trial as this driver's, beating now (given to
        a trial when it is created, in the same write)."""
        return {LIVE: {"driver": self.driver_id, "beat": time.time()}}

    def claim(self, trial_id: int, *, marked: bool = False) -> None:
        """Take a trial this driver just started as its own; the heartbeat thread keeps it
        fresh until :meth:`release`. ``marked``: it was created with :meth:`live_attr`, so
        nothing needs writing (a popped queued trial is marked here, one write)."""
        if not marked:
            self.storage.set_trial_system_attr(trial_id, LIVE, self.live_attr()[LIVE])
        with self._lock:
            self._mine.add(trial_id)

    def release(self, trial_id: int) -> None:
        """Stop the heartbeats of a trial this driver has told (or given up)."""
        with self._lock:
            self._mine.discard(trial_id)

    def start(self) -> None:
        """Start the heartbeat thread (a daemon: it dies with the driver, as it must)."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._beat_loop, name="hptune-heartbeat", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        """Stop the heartbeat thread and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def beat(self) -> None:
        """Refresh the heartbeat of every trial this driver runs, now."""
        with self._lock:
            trial_ids = sorted(self._mine)
        for trial_id in trial_ids:
            # A trial reaped by another driver raises here; the driver notices at its
            # next report or tell.
            with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
                self.storage.set_trial_system_attr(trial_id, LIVE, self.live_attr()[LIVE])

    def _beat_loop(self) -> None:
        while not self._stop.wait(self.heartbeat_interval):
            try:
                self.beat()
            except Exception:  # a storage hiccup: the next beat tries again
                logger.warning(
                    "heartbeat failed; retrying in %s s", self.heartbeat_interval, exc_info=True
                )

    def maybe_reap(self) -> list[FrozenTrial]:
        """:meth:`reap`, at most once per ``heartbeat_interval``."""
        if time.monotonic() - self._last_reap < self.heartbeat_interval:
            return []
        return self.reap()

    def reap(self) -> list[FrozenTrial]:
        """Fail every stale RUNNING trial of another driver (and enqueue its retry);
        returns the trials this call failed."""
        self._last_reap = time.monotonic()
        now = time.time()
        reaped = []
        for trial in self.ostudy.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            driver = driver_of(trial)
            if driver == self.driver_id:
                continue
            silent_s = now - _last_heartbeat(trial)
            if _gone_from_this_host(driver):
                reason = f"stale: its driver ({driver}) is gone"
            elif silent_s > self.grace_period:
                reason = f"stale: its driver stopped (no heartbeat for {silent_s:.0f} s)"
            else:
                continue
            if self._fail(trial, reason):
                reaped.append(trial)
                self.retry(trial, FailureKind.STALE)
        return reaped

    def requeue(self) -> list[int]:
        """Enqueue again every failed trial of a retryable kind that has no retry yet (an
        interrupted run's trials, a dead driver's): what a resumed run owes. Called when a
        driver starts, after :meth:`reap`; returns the numbers of the trials requeued."""
        trials = self.ostudy.get_trials(deepcopy=False)
        retried = {t.user_attrs.get(RETRY_OF) for t in trials}
        return [
            t.number
            for t in trials
            if t.number not in retried
            and (kind := _records.failure_kind(t)) is not None
            and self.retry(t, kind)
        ]

    def may_retry(self, kind: FailureKind) -> bool:
        """Whether a failure of ``kind`` may be retried at all (before reading the trial)."""
        return kind in RETRYABLE and self.max_retries > 0

    def retry(self, trial: FrozenTrial, kind: FailureKind) -> bool:
        """Enqueue ``trial`` again (same parameters, same seed) when a failure of ``kind``
        is retryable and attempts are left; True when it did."""
        attempt = int(trial.user_attrs.get(ATTEMPT, 0))
        if kind not in RETRYABLE or attempt >= self.max_retries:
            return False
        if not self.complete(dict(trial.params)):
            # Its driver died while drawing its config: nothing ran, and its params are
            # partial. It does not count, so a fresh trial replaces it.
            return False
        seed = _records.fact(trial.user_attrs, _records.SEED)
        if seed is None and self.study_seed is not None:  # reaped before its record
            seed = _records.derive_trial_seed(self.study_seed, trial.number)
        user_attrs: dict[str, Any] = {RETRY_OF: trial.number, ATTEMPT: attempt + 1}
        if _records.REPEAT_OF in trial.user_attrs:  # still a confirmation's slot
            user_attrs[_records.REPEAT_OF] = trial.user_attrs[_records.REPEAT_OF]
        if seed is not None:
            user_attrs[_records.SEED] = seed
        self.ostudy.enqueue_trial(dict(trial.params), user_attrs=user_attrs)
        return True

    def _fail(self, trial: FrozenTrial, reason: str) -> bool:
        try:
            _records.write_failure(
                self.storage, _optuna.trial_id(trial), trial.user_attrs, FailureKind.STALE, reason
            )
            return self.storage.set_trial_state_values(_optuna.trial_id(trial), TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            return False  # another driver reaped it first, or its driver came back


def _gone_from_this_host(driver: str | None) -> bool:
    """Whether ``driver`` (``host:pid:token``) ran on this host in a process that no longer
    exists: its trials need no grace period. (A pid the system reused looks alive, and the
    grace period decides as for a driver on another host.)"""
    if not driver:
        return False
    host, _, rest = driver.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit() or int(pid_text) == os.getpid():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def orphaned(trial: FrozenTrial) -> bool:
    """Whether a RUNNING ``trial``'s driver ran on this host and is gone (killed): the trial
    runs no more, though it stays RUNNING until a driver reaps it."""
    return trial.state == TrialState.RUNNING and _gone_from_this_host(driver_of(trial))


def driver_of(trial: FrozenTrial) -> str | None:
    """The id of the driver that runs (or ran) ``trial``, if it recorded one."""
    live = trial.system_attrs.get(LIVE)
    return live["driver"] if live else trial.system_attrs.get(DRIVER)


def _last_heartbeat(trial: FrozenTrial) -> float:
    live = trial.system_attrs.get(LIVE)
    beat = live["beat"] if live else trial.system_attrs.get(HEARTBEAT)
    if beat is not None:
        return float(beat)
    # Popped or asked but not yet claimed: its start time is the best evidence of life.
    start = trial.datetime_start
    return start.timestamp() if start is not None else time.time()
