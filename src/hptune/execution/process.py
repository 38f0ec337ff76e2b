"""The process-pool executor: persistent, crash-isolated worker processes.

Protocol. Each worker owns one duplex :func:`multiprocessing.Pipe`; messages are tuples.

- worker → driver ``("ready", {"pid", "threads", "device"})`` once, after importing torch;
- driver → worker ``("run", number, pickled TrialJob)`` when the worker is idle;
- worker → driver ``("report", number, step, value)`` from ``trial.report``; the worker
  then blocks until the driver, having called ``on_report``, sends ``("answer", prune)``;
- worker → driver ``("done", TrialOutcome)`` (from :func:`~hptune.execution._run.run_job`);
- driver → worker ``("stop",)``: leave the loop (also honoured while awaiting an answer).

:meth:`ProcessExecutor.wait` waits with :func:`multiprocessing.connection.wait` on the
pipes *and* the process sentinels, so a worker that dies (SIGKILL, segfault,
``os._exit``) is noticed at once: its trial fails with the reason ("worker killed by
signal 9 (SIGKILL)", "worker exited with code 3") and a fresh worker takes its slot. A
trial past its timeout has its worker killed (SIGTERM, then SIGKILL after a grace) and
fails with "timed out after 2.0 s". The driver stays the only writer to storage.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from multiprocessing import util as mp_util
from multiprocessing.connection import wait as wait_any
from typing import Any

from hptune._checks import OneOf, check
from hptune.exceptions import ConfigError, HptuneError
from hptune.execution import _worker as proto
from hptune.execution._plan import (
    WorkerSlot,
    available_cpus,
    check_env,
    check_timeout,
    gpu_ids,
    plan_workers,
)
from hptune.execution._worker import worker_main
from hptune.execution.base import (
    Executor,
    FailureKind,
    OnReport,
    OutcomeState,
    TrialJob,
    TrialOutcome,
)

#: Seconds a worker gets to exit after SIGTERM (or after "stop") before SIGKILL.
KILL_GRACE_S = 2.0
#: Starts of one worker slot that may fail in a row (the process died before it said
#: "ready": killed by the OOM killer while importing torch, say) before the pool gives up:
#: a death that repeats is the environment's (a main module that fails to import), not luck.
START_ATTEMPTS = 3


@dataclasses.dataclass(frozen=True)
class WorkerInfo:
    """A snapshot of one worker, for tests and the CLI (``ProcessExecutor.workers``)."""

    index: int
    pid: int | None
    device: str
    threads: int
    ready: bool
    trials_run: int
    running: int | None  # number of the trial it runs, if any


@dataclasses.dataclass(eq=False)  # identity: a replacement is another worker
class _Worker:
    slot: WorkerSlot
    process: Any  # multiprocessing.Process of the chosen context
    conn: Any
    pid: int
    ready: bool = False
    threads: int = 0
    eof: bool = False
    trials_run: int = 0
    job: TrialJob | None = None
    payload: bytes | None = None  # the job's pickle, sent again if its worker dies booting
    started: float = 0.0
    deadline: float | None = None
    last_step: int | None = None

    @property
    def label(self) -> str:
        return f"worker {self.slot.index} (pid {self.pid})"


class ProcessExecutor(Executor):
    """Runs trials in persistent worker processes, one trial per worker at a time.

    Workers start once in :meth:`start`, import torch once and are reused across trials.
    A worker that dies fails only its trial and is replaced. Objectives must be picklable
    callables defined at module top level, or ``"package.module:function"`` strings; the
    workers import them using the driver's ``sys.path`` and working directory. As with any
    spawned process, a driver script needs the ``if __name__ == "__main__":`` guard (each
    worker re-imports it); a worker whose parent dies ends itself within a second.

    Args:
        n_workers: Worker processes; ``None`` means one per GPU (times
            ``trials_per_device``), or one per core on CPU. More workers than GPUs share
            them (see ``trials_per_device``).
        trial_timeout_s: Kill a trial's worker after this many seconds (``TrialJob.timeout_s``
            overrides it per trial); ``None`` for no limit.
        threads_per_worker: Torch threads per worker; default splits the cores between the
            workers (``max(1, cores // n_workers)``) so they do not oversubscribe the CPU.
        devices: ``"auto"`` (every visible GPU, else CPU), ``"cpu"`` (GPUs hidden from the
            workers) or the GPU ids to use (``[0, 1]``); each GPU worker sees only its GPU.
        trials_per_device: Most workers per GPU; ``None`` (default) packs as many as
            ``n_workers`` needs, ``ceil(n_workers / GPUs)``. Workers that share a GPU each
            get an even share of 90% of its memory (see ``execution._plan.plan_workers``).
        start_method: ``"spawn"`` (default: a fresh interpreter whose environment is set
            before torch loads; safe with CUDA and threads; every platform) or
            ``"forkserver"`` (Unix; forks from a clean server process). ``"fork"`` is refused:
            forking a driver that holds torch threads or a CUDA context can deadlock.
        worker_env: Extra environment variables for the workers, applied after (so able to
            override) the planned thread and device variables.

    Example:
        >>> with ProcessExecutor(2, trial_timeout_s=600) as ex:  # doctest: +SKIP
        ...     ex.start(lambda number, step, value: False)
        ...     ex.submit(TrialJob(0, {"lr": 0.1}, 0, "mypkg.train:objective"))
        ...     outcomes = ex.wait()
    """

    def __init__(
        self,
        n_workers: int | None,
        *,
        trial_timeout_s: float | None = None,
        threads_per_worker: int | None = None,
        devices: str | Sequence[int | str] = "auto",
        trials_per_device: int | None = None,
        start_method: str = "spawn",
        worker_env: dict[str, str] | None = None,
    ) -> None:
        check(
            "ProcessExecutor: start_method",
            start_method,
            OneOf(("spawn", "forkserver")),
            fix="'fork' is unsafe once torch has started threads or CUDA",
        )
        check_timeout("trial_timeout_s", trial_timeout_s)
        self._slots = plan_workers(
            n_workers,
            gpu_ids(devices),
            cpu_count=available_cpus(),
            trials_per_device=trials_per_device,
            threads_per_worker=threads_per_worker,
            hide_gpus=devices == "cpu",
        )
        self._extra_env = check_env(worker_env)
        self._timeout_s = trial_timeout_s
        self._ctx = multiprocessing.get_context(start_method)
        self._workers: list[_Worker] = []
        self._failed_starts: dict[int, int] = {}  # slot index -> starts failed in a row
        self._finished: list[TrialOutcome] = []
        self._closed = False
        # Kill the workers if the executor is dropped or the interpreter exits without
        # shutdown(). Workers are not daemons (daemons may not start DataLoader workers), and
        # multiprocessing joins non-daemon children at exit: without this, that join would
        # wait forever. Priority >= 0 runs it before that join.
        self._finalizer = mp_util.Finalize(self, _stop_all, args=(self._workers,), exitpriority=10)

    # -- interface --------------------------------------------------------------------

    @property
    def capacity(self) -> int:
        return len(self._slots)

    @property
    def n_running(self) -> int:
        return sum(w.job is not None for w in self._workers) + len(self._finished)

    @property
    def workers(self) -> list[WorkerInfo]:
        """The current workers (replacements included), in slot order."""
        return [
            WorkerInfo(
                index=w.slot.index,
                pid=w.pid,
                device=w.slot.device,
                threads=w.threads,
                ready=w.ready,
                trials_run=w.trials_run,
                running=w.job.number if w.job else None,
            )
            for w in self._workers
        ]

    def start(self, on_report: OnReport, startup_timeout_s: float = 300.0) -> None:
        """Start every worker and wait until each has imported torch and said ``ready``."""
        if self._workers or self._closed:
            raise HptuneError("ProcessExecutor.start() may be called once, before submit().")
        super().start(on_report)
        self._workers.extend(self._spawn(slot) for slot in self._slots)
        deadline = time.monotonic() + startup_timeout_s
        try:
            while not all(w.ready for w in self._workers):
                if time.monotonic() > deadline:
                    raise HptuneError(
                        f"worker processes did not start within {startup_timeout_s} s; "
                        "check that torch imports in a fresh interpreter."
                    )
                self._poll(0.1)
        except BaseException:  # a worker died while starting, or Ctrl-C
            self.shutdown()
            raise

    def submit(self, job: TrialJob) -> None:
        payload = _pickle_job(job)
        if not self._workers or self._closed:
            raise HptuneError("ProcessExecutor.submit() needs start() first and no shutdown().")
        idle = [w for w in self._workers if w.job is None]
        if not idle:
            raise HptuneError(
                f"submit(): all {self.capacity} workers are busy; call wait() for an outcome first."
            )
        worker = min(idle, key=lambda w: (w.eof, not w.ready))  # a ready one starts at once
        worker.job, worker.payload, worker.last_step = job, payload, None
        worker.started = time.monotonic()
        if worker.ready:
            self._arm_timeout(worker)
        with contextlib.suppress(OSError):  # a dead worker is handled by its sentinel
            worker.conn.send((proto.RUN, job.number, payload))

    def wait(self, timeout_s: float | None = None) -> list[TrialOutcome]:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while not self._finished and any(w.job for w in self._workers):
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            self._poll(remaining)
            if deadline is not None and time.monotonic() >= deadline:
                break
        done, self._finished = self._finished, []
        return done

    def shutdown(self) -> list[TrialOutcome]:
        """Stop the workers (idle ones by message, busy ones by signal), join them all and
        return FAILED "interrupted" outcomes for the trials they were running, after any
        outcomes that finished but were not yet returned by :meth:`wait` (a Ctrl-C may have
        interrupted it). Idempotent; a second call finishes what an interrupted one began."""
        self._closed = True
        now = time.monotonic()
        outcomes, self._finished = self._finished, []
        finished = {o.number for o in outcomes}  # a Ctrl-C may fall between two updates
        for w in self._workers:
            if w.job is not None and w.job.number not in finished:
                outcomes.append(self._failed(w, FailureKind.INTERRUPTED, "interrupted", now))
        _stop_all(self._workers)  # empties the list: a second call reports nothing twice
        return outcomes

    # -- driver internals ---------------------------------------------------------------

    def _spawn(self, slot: WorkerSlot) -> _Worker:
        ours, theirs = self._ctx.Pipe(duplex=True)
        env = {**slot.env, **self._extra_env}
        paths = [p or os.getcwd() for p in [os.getcwd(), *sys.path]]
        process = self._ctx.Process(
            target=worker_main,
            args=(
                theirs,
                env,
                slot.threads,
                slot.device,
                f"worker {slot.index}",
                paths,
                slot.memory_fraction,
            ),  # fmt: skip
            name=f"hptune-worker-{slot.index}",
        )
        with _sigint_ignored_by_children():  # Ctrl-C is the driver's to handle
            process.start()
        theirs.close()  # so that the worker's death shows as EOF on our end
        return _Worker(slot=slot, process=process, conn=ours, pid=process.pid)

    def _poll(self, timeout_s: float | None) -> None:
        """Handle whatever happens within ``timeout_s``: messages, deaths, timeouts."""
        timeout_s = self._until_next_timeout(timeout_s)
        by_object: dict[Any, _Worker] = {}
        for w in self._workers:
            if not w.eof:
                by_object[w.conn] = w
            by_object[w.process.sentinel] = w
        for obj in wait_any(list(by_object), timeout_s):
            w = by_object[obj]
            if w not in self._workers:
                continue  # replaced while handling an earlier object of this round
            self._drain(w)
            if obj == w.process.sentinel:
                self._on_death(w)
        self._expire_timeouts()

    def _drain(self, w: _Worker) -> None:
        while not w.eof:
            try:
                if not w.conn.poll():
                    return
                msg = w.conn.recv()
            except (EOFError, OSError):
                w.eof = True
                return
            self._handle(w, msg)

    def _handle(self, w: _Worker, msg: tuple[Any, ...]) -> None:
        kind = msg[0]
        if kind == proto.READY:
            w.ready, w.threads = True, msg[1]["threads"]
            self._failed_starts.pop(w.slot.index, None)
            if w.job is not None:  # submitted while it was booting: its clock starts now
                w.started = time.monotonic()
                self._arm_timeout(w)
        elif kind == proto.REPORT:
            _, number, step, value = msg
            w.last_step = step
            prune = self._on_report(number, step, value)
            with contextlib.suppress(OSError):
                w.conn.send((proto.ANSWER, bool(prune)))
        elif kind == proto.DONE:
            self._finished.append(msg[1])  # before clearing the job: see shutdown()
            w.job, w.deadline = None, None
            w.trials_run += 1

    def _on_death(self, w: _Worker) -> None:
        w.process.join()  # the sentinel fired: it has exited, this only reaps it
        code = w.process.exitcode
        if code is not None and code < 0:
            reason = f"worker killed by signal {-code} ({_signal_name(-code)})"
        else:
            reason = f"worker exited with code {code}"
        if not w.ready:  # it never ran its job: not the trial's fault
            failures = self._failed_starts.get(w.slot.index, 0) + 1
            self._failed_starts[w.slot.index] = failures
            if failures < START_ATTEMPTS and not self._closed:
                self._restart(w)
                return
            if w.job is not None:
                died = self._failed(w, FailureKind.WORKER_DIED, reason, time.monotonic())
                self._finished.append(died)
            _close(w)
            self._workers.remove(w)
            raise HptuneError(
                f"{w.label} died while starting, {failures} times in a row ({reason}); its "
                "error output above says why (often the main module, which spawn re-imports "
                "in every worker, lacks an `if __name__ == '__main__':` guard or fails to "
                "import)."
            )
        if w.job is not None:
            died = self._failed(w, FailureKind.WORKER_DIED, reason, time.monotonic())
            self._finished.append(died)
            w.job = None
        self._replace(w)

    def _restart(self, w: _Worker) -> None:
        """Start a fresh worker in the slot of one that died booting; its job, if any, goes
        to the fresh worker (it never ran)."""
        job, payload = w.job, w.payload
        _close(w)
        fresh = self._spawn(w.slot)
        self._workers[self._workers.index(w)] = fresh
        if job is not None:
            fresh.job, fresh.payload, fresh.started = job, payload, time.monotonic()
            with contextlib.suppress(OSError):
                fresh.conn.send((proto.RUN, job.number, payload))

    def _expire_timeouts(self) -> None:
        now = time.monotonic()
        for w in list(self._workers):
            if w.job is not None and w.deadline is not None and now >= w.deadline:
                self._drain(w)  # it may have finished just in time
                if w.job is None:
                    continue
                limit = w.job.timeout_s if w.job.timeout_s is not None else self._timeout_s
                _kill(w)
                reason = f"timed out after {limit} s"
                self._finished.append(self._failed(w, FailureKind.TIMEOUT, reason, now))
                w.job = None
                self._replace(w)

    def _replace(self, w: _Worker) -> None:
        _close(w)
        i = self._workers.index(w)
        if self._closed:
            del self._workers[i]
        else:
            self._workers[i] = self._spawn(w.slot)

    def _arm_timeout(self, w: _Worker) -> None:
        assert w.job is not None
        limit = w.job.timeout_s if w.job.timeout_s is not None else self._timeout_s
        w.deadline = None if limit is None else w.started + limit

    def _until_next_timeout(self, timeout_s: float | None) -> float | None:
        deadlines = [w.deadline for w in self._workers if w.job and w.deadline is not None]
        if not deadlines:
            return timeout_s
        until = max(0.0, min(deadlines) - time.monotonic())
        return until if timeout_s is None else min(until, timeout_s)

    def _failed(self, w: _Worker, kind: FailureKind, reason: str, now: float) -> TrialOutcome:
        assert w.job is not None
        return TrialOutcome(
            number=w.job.number,
            state=OutcomeState.FAILED,
            reason=reason,
            kind=kind,
            duration_s=now - w.started,
            last_step=w.last_step,
            worker=w.label,
        )


# -- helpers (module level: the finalizer must not hold the executor) ----------------------


def _stop_all(workers: list[_Worker]) -> None:
    """Stop and reap every worker: "stop" to idle ones, SIGTERM to busy or booting ones,
    SIGKILL to any still alive after the grace. Leaves ``workers`` empty."""
    for w in workers:
        if w.ready and w.job is None and not w.eof:
            with contextlib.suppress(OSError):
                w.conn.send((proto.STOP,))
        else:
            with contextlib.suppress(OSError, ValueError):
                w.process.terminate()
    deadline = time.monotonic() + KILL_GRACE_S
    for w in workers:
        with contextlib.suppress(ValueError):
            w.process.join(max(0.0, deadline - time.monotonic()))
    while workers:
        w = workers.pop()
        _kill(w)
        _close(w)


def _kill(w: _Worker) -> None:
    """SIGTERM, then SIGKILL after the grace; always reaps (no zombie)."""
    with contextlib.suppress(ValueError):  # ValueError: the process object is closed
        if w.process.is_alive():
            w.process.terminate()
            w.process.join(KILL_GRACE_S)
        if w.process.is_alive():
            w.process.kill()
        w.process.join()


def _close(w: _Worker) -> None:
    w.eof = True
    with contextlib.suppress(OSError):
        w.conn.close()
    with contextlib.suppress(ValueError):
        w.process.close()


@contextlib.contextmanager
def _sigint_ignored_by_children() -> Iterator[None]:
    """Spawn children that ignore SIGINT from their first instruction: an ignored signal
    stays ignored across exec (a blocked one does not survive spawn), and Python then
    installs no KeyboardInterrupt handler. The worker re-ignores it anyway (forkserver)."""
    if (
        not hasattr(signal, "pthread_sigmask")  # Windows: no process groups to worry about
        or threading.current_thread() is not threading.main_thread()  # signal.signal refuses
    ):
        yield  # the worker ignores SIGINT itself as soon as it runs
        return
    # Block first so that a Ctrl-C meant for the driver in this window stays pending
    # (a blocked signal is queued even while ignored) and is delivered on restore.
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    old_handler = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old_handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)


def _pickle_job(job: TrialJob) -> bytes:
    """Pickle here, at submit, so that an unpicklable objective is an error now and not
    a hang or a dead worker later."""
    try:
        pickle.dumps(job.objective)
    except Exception as exc:
        name = getattr(job.objective, "__qualname__", repr(job.objective))
        raise ConfigError(
            f"objective {name} cannot be sent to a worker process: define it at module top "
            f"level or pass 'package.module:function' ({type(exc).__name__}: {exc})."
        ) from exc
    try:
        return pickle.dumps(job)
    except Exception as exc:
        raise ConfigError(
            f"trial {job.number}: config {job.config!r} cannot be sent to a worker process: "
            f"use plain values (numbers, strings, lists, dicts) ({type(exc).__name__}: {exc})."
        ) from exc


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return "unknown signal"
