"""The inline executor: trials run one at a time in the driver process."""

from __future__ import annotations

import collections

from hptune.execution._run import run_job
from hptune.execution.base import (
    Executor,
    FailureKind,
    OutcomeState,
    TrialJob,
    TrialOutcome,
)


class InlineExecutor(Executor):
    """Runs each trial in the driver process during :meth:`wait`.

    No isolation: a segfault in the objective takes the driver down. Use it for quick
    experiments, debugging (breakpoints work) and objectives that are not picklable.
    """

    def __init__(self) -> None:
        self._queue: collections.deque[TrialJob] = collections.deque()

    @property
    def capacity(self) -> int:
        return 1

    @property
    def n_running(self) -> int:
        return len(self._queue)

    def submit(self, job: TrialJob) -> None:
        self._queue.append(job)

    def wait(self, timeout_s: float | None = None) -> list[TrialOutcome]:
        if not self._queue:
            return []
        job = self._queue.popleft()

        def reporter(step: int, value: float) -> bool:
            return self._on_report(job.number, step, value)

        try:
            return [run_job(job, reporter, worker="inline")]
        except SystemExit as exc:
            # The objective's own sys.exit (a script's argparse, say): in a worker process
            # it ends that worker and fails the trial; here it would end the whole run,
            # silently, with its code. It fails the trial here too.
            return [
                TrialOutcome(
                    number=job.number,
                    state=OutcomeState.FAILED,
                    reason=f"the objective called sys.exit({exc.code!r})",
                    kind=FailureKind.ERROR,
                    worker="inline",
                )
            ]

    def shutdown(self) -> list[TrialOutcome]:
        self._queue.clear()
        return []
