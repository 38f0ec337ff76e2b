"""The Ray executor: each trial is a Ray task with its own CPU/GPU request.

Ray (https://docs.ray.io, Moritz et al. 2018, arXiv 1712.05889) schedules the tasks on a
local instance or an existing cluster; hptune adds only the report channel. A trial's
``trial.report(step, value)`` calls a small async *broker* actor and blocks until the
driver answers; the driver's :meth:`RayExecutor.wait` long-polls the broker for reports
together with the finished tasks (one ``ray.wait``), calls ``on_report`` and posts the
answers back. So pruning decisions are made in the driver, exactly as inline.

``ray`` is imported only when the executor starts: ``import hptune`` never loads it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import socket
import time
from typing import Any

from hptune._checks import Int, Number, check, optional
from hptune.exceptions import ConfigError, HptuneError, one_line
from hptune.execution._run import run_job
from hptune.execution.base import (
    Executor,
    FailureKind,
    OnReport,
    OutcomeState,
    TrialJob,
    TrialOutcome,
)

#: How long one broker poll may wait in the actor before returning empty; the driver then
#: polls again. Short enough that an abandoned poll does not linger.
_POLL_S = 5.0


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise HptuneError(
            f"executor='ray' needs Ray: pip install 'hptune[ray]' ({one_line(exc)})"
        ) from exc
    return ray


class _ReportBroker:
    """Async Ray actor between trial tasks (which post reports) and the driver (which
    collects them and answers). Async so that many blocked ``report`` calls, one per
    running trial, wait concurrently on futures inside one actor."""

    def __init__(self) -> None:
        self._queue: list[tuple[int, int, int, float]] = []  # (key, number, step, value)
        self._answers: dict[int, asyncio.Future[bool]] = {}
        self._arrived = asyncio.Event()
        self._next_key = 0

    async def report(self, number: int, step: int, value: float) -> bool:
        key, self._next_key = self._next_key, self._next_key + 1
        answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._answers[key] = answer
        self._queue.append((key, number, step, value))
        self._arrived.set()
        return await answer

    async def collect(self, timeout_s: float) -> list[tuple[int, int, int, float]]:
        if not self._queue:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), timeout_s)
        reports, self._queue = self._queue, []
        self._arrived.clear()
        return reports

    async def answer(self, decisions: list[tuple[int, bool]]) -> None:
        for key, prune in decisions:
            future = self._answers.pop(key, None)
            if future is not None and not future.done():
                future.set_result(prune)


def _run_in_ray_task(number: int, payload: bytes, broker: Any) -> TrialOutcome:
    """Body of the Ray task: unpickle the job, run it through the shared ``run_job``.

    The job arrives pickled (by :func:`_pickle_job`) and is loaded here, so an objective
    this worker cannot import fails its trial with the reason instead of a Ray error.
    """
    import ray

    label = f"ray:{socket.gethostname()}:{os.getpid()}"
    try:
        job: TrialJob = ray.cloudpickle.loads(payload)
    except Exception as exc:  # e.g. a module on the driver's sys.path only
        return TrialOutcome(
            number=number,
            state=OutcomeState.FAILED,
            reason=f"cannot load the trial in a Ray worker: {one_line(exc)}",
            kind=FailureKind.ERROR,
            worker=label,
        )

    def reporter(step: int, value: float) -> bool:
        return bool(ray.get(broker.report.remote(job.number, step, value)))

    return run_job(job, reporter, worker=label)


def _pickle_job(ray: Any, job: TrialJob) -> bytes:
    """Pickle at submit, so that an objective or config that cannot travel is an error
    now, in the driver. Ray's cloudpickle sends lambdas and closures by value."""
    try:
        return bytes(ray.cloudpickle.dumps(job))
    except Exception as exc:
        name = getattr(job.objective, "__qualname__", repr(job.objective))
        raise ConfigError(
            f"trial {job.number} (objective {name}, config {job.config!r}) cannot be sent to "
            f"a Ray worker: use a module-level objective or 'package.module:function' and "
            f"plain config values ({one_line(exc)})."
        ) from exc


class _Running:
    """Driver-side record of a submitted trial."""

    def __init__(self, job: TrialJob, ref: Any) -> None:
        self.job = job
        self.ref = ref
        self.started = time.monotonic()
        self.deadline = None if job.timeout_s is None else self.started + job.timeout_s

    def failed(self, kind: FailureKind, reason: str, traceback: str | None = None) -> TrialOutcome:
        return TrialOutcome(
            number=self.job.number,
            state=OutcomeState.FAILED,
            reason=reason,
            kind=kind,
            traceback=traceback,
            duration_s=time.monotonic() - self.started,
        )


class RayExecutor(Executor):
    """Runs each trial as a Ray task, on this machine or on a Ray cluster.

    A task that dies (segfault, OOM kill, ``os._exit``) fails only its trial, with the
    reason; Ray's retries are off, so a trial never runs twice. Ray reuses its worker
    processes, so ``import torch`` is paid once per worker, not per trial. The per-trial
    ``timeout_s`` counts from submission and is enforced by killing the task
    (``ray.cancel(force=True)``).

    Args:
        address: Address of an existing cluster (as ``ray.init(address=...)`` takes it,
            e.g. ``"ray://head:10001"`` or ``"auto"``). ``None``: use the Ray already
            initialised in this process, else ``ray.init()`` (which joins a cluster named
            by ``RAY_ADDRESS``, or starts a local one).
        num_cpus_per_trial: CPUs each trial task requests (may be fractional).
        num_gpus_per_trial: GPUs each trial task requests; Ray sets ``CUDA_VISIBLE_DEVICES``
            for the task.
        max_concurrent: Trials run at once. Default: what the cluster holds, its CPUs
            divided by ``num_cpus_per_trial`` (and its GPUs by ``num_gpus_per_trial``).
        init_kwargs: Extra keyword arguments for ``ray.init`` when this executor starts Ray.

    Example:
        >>> from hptune.execution import TrialJob
        >>> ex = RayExecutor(num_cpus_per_trial=1, init_kwargs={"num_cpus": 2})
        >>> ex.start(lambda number, step, value: False)  # doctest: +SKIP
        >>> ex.submit(TrialJob(0, {"lr": 0.1}, 0, "mypkg.tasks:train"))  # doctest: +SKIP
        >>> outcomes = ex.wait()  # doctest: +SKIP
        >>> ex.shutdown()  # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        address: str | None = None,
        num_cpus_per_trial: float = 1,
        num_gpus_per_trial: float = 0,
        max_concurrent: int | None = None,
        init_kwargs: dict[str, Any] | None = None,
    ) -> None:
        check("RayExecutor: num_cpus_per_trial", num_cpus_per_trial, Number(low=0, low_open=True))
        check("RayExecutor: num_gpus_per_trial", num_gpus_per_trial, Number(low=0))
        check(
            "RayExecutor: max_concurrent",
            max_concurrent,
            optional(Int(low=1)),
            fix="None for what the cluster holds",
        )
        self._address = address
        self._num_cpus = num_cpus_per_trial
        self._num_gpus = num_gpus_per_trial
        self._max_concurrent = max_concurrent
        self._init_kwargs = dict(init_kwargs or {})
        self._ray: Any = None
        self._owns_ray = False
        self._capacity: int | None = None
        self._broker: Any = None
        self._remote: Any = None
        self._poll_ref: Any = None
        self._running: dict[int, _Running] = {}  # by trial number

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def capacity(self) -> int:
        if self._capacity is None:
            self._capacity = self._max_concurrent or self._cluster_capacity(self._connect())
        return self._capacity

    @property
    def n_running(self) -> int:
        return len(self._running)

    def start(self, on_report: OnReport) -> None:
        super().start(on_report)
        ray = self._connect()
        try:
            _ = self.capacity  # fail now, not at the first submit, on a cluster without GPUs
        except BaseException:
            self.shutdown()  # disconnects from a Ray that this executor started
            raise
        # num_cpus=0: the broker must never take a slot a trial could use.
        self._broker = ray.remote(num_cpus=0)(_ReportBroker).remote()
        # max_retries=0: Ray re-runs a task whose worker died; a trial must run at most once.
        self._remote = ray.remote(_run_in_ray_task).options(
            num_cpus=self._num_cpus, num_gpus=self._num_gpus, max_retries=0
        )

    def submit(self, job: TrialJob) -> None:
        if self._remote is None:
            raise HptuneError("RayExecutor.submit: call start(on_report) first.")
        if job.number in self._running:
            raise HptuneError(f"RayExecutor.submit: trial {job.number} is already running.")
        if job.threads is None:  # as many torch threads as the CPUs the task asked for
            job = dataclasses.replace(job, threads=max(1, int(self._num_cpus)))
        payload = _pickle_job(self._ray, job)
        self._running[job.number] = _Running(
            job, self._remote.remote(job.number, payload, self._broker)
        )

    def shutdown(self) -> list[TrialOutcome]:
        outcomes = []
        for running in self._running.values():
            self._ray.cancel(running.ref, force=True)
            outcomes.append(running.failed(FailureKind.INTERRUPTED, "interrupted"))
        self._running.clear()
        if self._broker is not None:
            self._ray.kill(self._broker)
            self._broker = self._remote = self._poll_ref = None
        if self._owns_ray:
            self._ray.shutdown()
            self._owns_ray = False
        return outcomes

    def _connect(self) -> Any:
        if self._ray is None:
            self._ray = _import_ray()
        if not self._ray.is_initialized():
            self._ray.init(address=self._address, **self._init_kwargs)
            self._owns_ray = True
        return self._ray

    def _cluster_capacity(self, ray: Any) -> int:
        resources = ray.cluster_resources()
        fits = int(resources.get("CPU", 0) // self._num_cpus)
        if self._num_gpus:
            fits = min(fits, int(resources.get("GPU", 0) // self._num_gpus))
        if fits < 1:
            raise ConfigError(
                f"RayExecutor: not even one trial fits the Ray cluster ({resources.get('CPU', 0):g} CPUs, "
                f"{resources.get('GPU', 0):g} GPUs) with num_cpus_per_trial={self._num_cpus} and "
                f"num_gpus_per_trial={self._num_gpus}; lower them or add resources to the cluster."
            )
        return fits

    # -- waiting -----------------------------------------------------------------------

    def wait(self, timeout_s: float | None = None) -> list[TrialOutcome]:
        if not self._running:
            return []
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            outcomes = self._expire_timed_out()
            wait_s = 0.0 if outcomes else _seconds_until(deadline, *self._trial_deadlines())
            outcomes += [self._finish(number) for number in self._poll(wait_s)]
            if outcomes or (deadline is not None and time.monotonic() >= deadline):
                return outcomes

    def _poll(self, wait_s: float | None) -> list[int]:
        """Wait up to ``wait_s`` for a finished trial or reports; answer the reports;
        return the numbers of the finished trials."""
        ray = self._ray
        if self._poll_ref is None:
            self._poll_ref = self._broker.collect.remote(_POLL_S)
        refs = {running.ref: number for number, running in self._running.items()}
        ready, _ = ray.wait([*refs, self._poll_ref], num_returns=1, timeout=wait_s)
        if self._poll_ref in ready:
            reports, self._poll_ref = ray.get(self._poll_ref), None
            self._answer(reports)
        done, _ = ray.wait(list(refs), num_returns=len(refs), timeout=0)
        return [refs[ref] for ref in done]

    def _answer(self, reports: list[tuple[int, int, int, float]]) -> None:
        decisions = []
        for key, number, step, value in reports:
            # A report from a trial already timed out or interrupted: stop it, ask no one.
            prune = number not in self._running or bool(self._on_report(number, step, value))
            decisions.append((key, prune))
        if decisions:
            self._broker.answer.remote(decisions)

    def _finish(self, number: int) -> TrialOutcome:
        running = self._running.pop(number)
        ray = self._ray
        try:
            return ray.get(running.ref)
        except ray.exceptions.RayTaskError as exc:
            # run_job catches the objective's errors, so this is the task machinery.
            cause = exc.cause if isinstance(exc.cause, BaseException) else exc
            return running.failed(FailureKind.ERROR, one_line(cause), traceback=str(exc))
        except ray.exceptions.RayError as exc:  # worker crashed, node died, OOM kill
            reason = f"Ray worker died: {one_line(exc)}"
            return running.failed(FailureKind.WORKER_DIED, reason, traceback=str(exc))

    def _expire_timed_out(self) -> list[TrialOutcome]:
        now = time.monotonic()
        expired = [
            r for r in self._running.values() if r.deadline is not None and r.deadline <= now
        ]
        for running in expired:
            self._ray.cancel(running.ref, force=True)
            del self._running[running.job.number]
        # Same wording as the process executor, so reasons read alike whatever ran the trial.
        return [
            r.failed(FailureKind.TIMEOUT, f"timed out after {r.job.timeout_s} s") for r in expired
        ]

    def _trial_deadlines(self) -> list[float]:
        return [r.deadline for r in self._running.values() if r.deadline is not None]


def _seconds_until(*deadlines: float | None) -> float | None:
    """Seconds until the earliest deadline (``None``: no deadline, wait indefinitely)."""
    present = [d for d in deadlines if d is not None]
    return None if not present else max(0.0, min(present) - time.monotonic())
