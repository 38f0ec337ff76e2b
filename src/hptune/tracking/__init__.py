"""Experiment tracking: every trial of a study logged to MLflow or TensorBoard as it ends.

- :class:`~hptune.tracking.mlflow.MlflowTracker` (``pip install 'hptune[mlflow]'``): one
  parent run per study, a nested run per trial.
- :class:`~hptune.tracking.tensorboard.TensorBoardTracker`
  (``pip install 'hptune[tensorboard]'``): a folder per study, a run folder per trial.

Turned on by a spec's ``tracking:`` section (``tracking: {mlflow: {tracking_uri:
sqlite:///mlflow.db}, tensorboard: {log_dir: runs}}``) or in Python with
``study.optimize(objective, trackers=[MlflowTracker()])``. Trackers run in the driver
process (see :class:`Tracker`). Nothing here imports MLflow or TensorBoard until a tracker
is built, and ``import hptune`` does not import this package; a missing package raises
:class:`~hptune.exceptions.MissingExtraError` naming the ``pip install``.

Example:
    >>> from hptune.tracking import list_trackers
    >>> list_trackers()
    ['mlflow', 'tensorboard']
"""

from __future__ import annotations

from typing import Any

from hptune.tracking._base import (
    Tracker,
    create_tracker,
    create_trackers,
    list_trackers,
    option_problems,
    register_tracker,
)

__all__ = [
    "MlflowTracker",
    "TensorBoardTracker",
    "Tracker",
    "create_tracker",
    "create_trackers",
    "list_trackers",
    "option_problems",
    "register_tracker",
]


def __getattr__(name: str) -> Any:
    # The tracker classes load on first use: their modules are light, but there is no
    # reason to read them for a study that tracks nothing.
    if name in ("MlflowTracker", "TensorBoardTracker"):
        from hptune.tracking._base import tracker_class

        return tracker_class("mlflow" if name == "MlflowTracker" else "tensorboard")
    raise AttributeError(f"module 'hptune.tracking' has no attribute {name!r}")
