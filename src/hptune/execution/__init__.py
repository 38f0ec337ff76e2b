"""Executors: where trials run (inline in the driver, worker processes, Ray).

``RayExecutor`` imports ray only when it starts, so importing this package stays light.
"""

from __future__ import annotations

from hptune.execution._factory import EXECUTORS, create_executor
from hptune.execution._plan import WorkerSlot, plan_workers
from hptune.execution.base import Executor, FailureKind, OutcomeState, TrialJob, TrialOutcome
from hptune.execution.inline import InlineExecutor
from hptune.execution.process import ProcessExecutor, WorkerInfo
from hptune.execution.ray_executor import RayExecutor

__all__ = [
    "EXECUTORS",
    "Executor",
    "FailureKind",
    "InlineExecutor",
    "OutcomeState",
    "ProcessExecutor",
    "RayExecutor",
    "TrialJob",
    "TrialOutcome",
    "WorkerInfo",
    "WorkerSlot",
    "create_executor",
    "plan_workers",
]
