"""Executors: where trials run (inline in the driver, worker processes, Ray)."""

from __future__ import annotations

from hptune.execution.base import Executor, OutcomeState, TrialJob, TrialOutcome
from hptune.execution.inline import InlineExecutor

__all__ = ["Executor", "InlineExecutor", "OutcomeState", "TrialJob", "TrialOutcome"]
