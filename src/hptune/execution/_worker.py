"""The worker side of :class:`~hptune.execution.process.ProcessExecutor`.

A worker is a long-lived process: it applies its environment, imports torch once, says
``ready`` and then runs one trial at a time through :func:`hptune.execution._run.run_job`,
so errors, pruning and non-float results are treated exactly as in the inline executor.
The protocol (tuples over one duplex :func:`multiprocessing.Pipe` per worker) is described
in :mod:`hptune.execution.process`.

This module must not import torch at module level: the environment (thread counts,
``CUDA_VISIBLE_DEVICES``) has to be in place before torch loads.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from hptune.exceptions import one_line
from hptune.execution._run import run_job
from hptune.execution.base import FailureKind, OutcomeState, TrialOutcome

# Driver → worker.
RUN = "run"  # ("run", number, pickled TrialJob)
ANSWER = "answer"  # ("answer", should_prune)
STOP = "stop"  # ("stop",)
# Worker → driver.
READY = "ready"  # ("ready", {"pid": int, "threads": int, "device": str})
REPORT = "report"  # ("report", number, step, value)
DONE = "done"  # ("done", TrialOutcome)

#: How often a worker checks that its parent is still alive (seconds).
ORPHAN_CHECK_S = 1.0


def worker_main(
    conn: Connection,
    env: dict[str, str],
    threads: int,
    device: str,
    label: str,
    sys_path: list[str],
    memory_fraction: float | None = None,
) -> None:
    """Entry point of a worker process (the ``target`` of its ``Process``).

    ``memory_fraction`` caps the share of the GPU's memory this worker's CUDA allocator may
    take, when it shares the GPU with other workers (an allocation past it raises
    ``torch.cuda.OutOfMemoryError``, which ``fit_micro_batch`` probes against).
    """
    # Ctrl-C in a terminal signals the whole process group; the driver handles it and
    # stops the workers, so a worker must not die with a traceback of its own.
    # (The driver spawns workers with SIGINT already ignored; this covers forkserver.)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.update(env)
    # forkserver children inherit the server's sys.path, not the driver's current one.
    sys.path.extend(p for p in sys_path if p not in sys.path)
    _start_orphan_guard()
    import torch  # after the environment: OMP/MKL read their thread counts at load time

    torch.set_num_threads(threads)
    if memory_fraction is not None and torch.cuda.is_available():
        torch.cuda.set_per_process_memory_fraction(memory_fraction)  # of the one visible GPU
    # Fails once inter-op work has run (e.g. in a main module that spawn re-imported).
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(threads)
    label = f"{label} (pid {os.getpid()})"
    _send(conn, (READY, {"pid": os.getpid(), "threads": torch.get_num_threads(), "device": device}))
    _serve(conn, label)


def _send(conn: Connection, msg: tuple) -> None:
    """Send ``msg`` to the driver; end this worker quietly when the driver is gone (killed:
    its end of the pipe is closed), as a receive does, not with a BrokenPipeError
    traceback on the terminal the driver was run from."""
    try:
        conn.send(msg)
    except (BrokenPipeError, ConnectionResetError, EOFError):
        raise SystemExit(0) from None


def _serve(conn: Connection, label: str) -> None:
    """Run trials until told to stop or the driver goes away."""
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return  # the driver closed its end: nothing more to do
        if msg[0] == STOP:
            return
        if msg[0] == RUN:
            _, number, payload = msg
            _send_outcome(conn, _run_payload(conn, number, payload, label))


def _run_payload(conn: Connection, number: int, payload: bytes, label: str) -> TrialOutcome:
    try:
        job = pickle.loads(payload)
    except Exception as exc:  # e.g. an objective defined in an interactive __main__
        return TrialOutcome(
            number=number,
            state=OutcomeState.FAILED,
            reason=f"cannot load the trial in a worker process: {one_line(exc)}",
            kind=FailureKind.ERROR,
            worker=label,
        )

    def reporter(step: int, value: float) -> bool:
        _send(conn, (REPORT, number, step, value))
        return _await_answer(conn)

    try:
        return run_job(job, reporter, worker=label)
    except KeyboardInterrupt:
        # A worker ignores SIGINT, so this was raised by the objective's own code: its
        # trial's error, not a Ctrl-C (run_job lets it through for the inline executor,
        # where it is one). Not a dead worker either, which a resume would retry.
        return TrialOutcome(
            number=number,
            state=OutcomeState.FAILED,
            reason="KeyboardInterrupt raised by the objective (not a Ctrl-C: workers ignore it)",
            kind=FailureKind.ERROR,
            worker=label,
        )


def _await_answer(conn: Connection) -> bool:
    """Block the objective's ``trial.report`` until the driver has consulted the pruner."""
    try:
        msg = conn.recv()
    except (EOFError, OSError):
        raise SystemExit(0) from None  # driver gone: stop, do not finish the trial
    if msg[0] == STOP:
        raise SystemExit(0)  # run_job lets SystemExit through: the worker ends
    assert msg[0] == ANSWER, msg
    return bool(msg[1])


def _send_outcome(conn: Connection, outcome: TrialOutcome) -> None:
    try:
        _send(conn, (DONE, outcome))
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        # Only ``attrs`` can hold arbitrary objects; nothing was written, so resend.
        _send(
            conn,
            (
                DONE,
                TrialOutcome(
                    number=outcome.number,
                    state=OutcomeState.FAILED,
                    reason=f"trial attributes cannot be sent to the driver: {one_line(exc)}",
                    kind=FailureKind.ERROR,
                    duration_s=outcome.duration_s,
                    last_step=outcome.last_step,
                    worker=outcome.worker,
                ),
            ),
        )


def _start_orphan_guard() -> None:
    """End this worker when its parent dies (e.g. the driver was SIGKILLed mid-trial);
    otherwise a long trial would run on with nobody to report to."""
    parent = os.getppid()

    def watch() -> Any:
        while True:
            time.sleep(ORPHAN_CHECK_S)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="hptune-orphan-guard", daemon=True).start()
