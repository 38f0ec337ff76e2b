"""TensorBoard: one run folder per trial, grouped in a folder per study. Needs
``pip install 'hptune[tensorboard]'`` (the ``tensorboard`` package, which
``torch.utils.tensorboard`` writes for); view with ``tensorboard --logdir runs``.

Layout: ``<log_dir>/<study>/trial-<number, 5 digits>/`` (the study name made a safe folder
name by ``hptune._paths.file_name``; zero-padded so trials sort in order). TensorBoard has
no nesting of runs, so the study's folder is what groups them: point ``--logdir`` at it to
see one study. Each trial's folder holds, written with ``SummaryWriter``:

* the curve: the study's metric at each reported step (``add_scalar``);
* ``value`` (the trial's value) and the objective's numeric attributes under ``attrs/``;
* the config (dotted keys) and ``seed`` as hyperparameters, with ``value`` as their metric,
  for the HParams dashboard (``add_hparams``, written into the trial's own folder);
* a text summary: state, stage, failure kind and reason.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from hptune._checks import Pattern
from hptune._extras import require_extra
from hptune._paths import file_name, make_a_file_in
from hptune.exceptions import HptuneError
from hptune.tracking._base import Tracker, flat_params, numeric_attrs

#: A trial's folder name (``trial-00007``); :meth:`TensorBoardTracker.logged_trials` reads it.
TRIAL_DIR = "trial-{:05d}"


class _Writable(Pattern):
    """A folder hptune can make or write in: the nearest part of the path that exists is a
    folder this process may write to (checked when the spec is, so a run never starts
    only to fail at its first logged trial)."""

    def accepts(self, value: Any) -> bool:
        if not super().accepts(value):
            return False
        path = Path(value).absolute()
        while not path.exists():
            path = path.parent
        if not path.is_dir():
            return False
        try:
            make_a_file_in(path)
        except OSError:
            return False
        return True


class TensorBoardTracker(Tracker):
    """Log every trial of a study to TensorBoard event files, one folder per trial.

    Args:
        log_dir: The folder the study's folder goes in (default ``runs``, TensorBoard's
            own default).

    Example:
        >>> tracker = TensorBoardTracker(log_dir="runs")  # doctest: +SKIP
        >>> study.optimize(objective, n_trials=20, trackers=[tracker])  # doctest: +SKIP
    """

    name = "tensorboard"
    option_rules = {
        "log_dir": _Writable(r"\S(.*\S)?", "a folder such as runs, that this user can write")
    }

    def __init__(self, log_dir: str | os.PathLike[str] = "runs") -> None:
        if isinstance(log_dir, os.PathLike):
            log_dir = os.fspath(log_dir)
        super().__init__(log_dir=log_dir)
        self.log_dir = log_dir
        board = require_extra(
            "torch.utils.tensorboard", "tensorboard", "hptune.tracking.tensorboard", "tensorboard"
        )
        self._writer_class = board.SummaryWriter
        self.root: Path | None = None

    def start(self, study: Any) -> None:
        self.root = Path(self.log_dir) / file_name(study.name)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # made unwritable since the spec was checked
            raise HptuneError(
                f"TensorBoard tracking: cannot make the folder {self.root}: "
                f"{exc.strerror or exc}; choose another tracking.tensorboard.log_dir."
            ) from None

    def logged_trials(self) -> set[int]:
        assert self.root is not None, "start() runs first"
        prefix = TRIAL_DIR.split("{")[0]
        return {
            int(path.name[len(prefix) :])
            for path in self.root.glob(f"{prefix}*")
            if path.name[len(prefix) :].isdigit()
        }

    def log_trial(self, record: Any) -> None:
        assert self.root is not None, "start() runs first"
        folder = self.root / TRIAL_DIR.format(record.number)
        with self._writer_class(log_dir=str(folder)) as writer:
            for step, value in sorted(record.intermediate_values.items()):
                if math.isfinite(value):
                    writer.add_scalar(self.metric, value, int(step))
            for key, value in numeric_attrs(record.attrs).items():
                writer.add_scalar(f"attrs/{key}", value, 0)
            writer.add_text("trial", _summary(record), 0)
            value = record.value if record.state != "FAILED" else None
            metrics = {"value": value} if value is not None and math.isfinite(value) else {}
            # Written into the trial's own folder ("."), not a new one per call.
            writer.add_hparams(_hparams(record), metrics, run_name=".")


def _hparams(record: Any) -> dict[str, Any]:
    """The config and seed as TensorBoard takes hyperparameters: bool, int, float or text."""
    params = {**flat_params(record.config), "seed": record.seed}
    return {k: v if isinstance(v, bool | int | float | str) else str(v) for k, v in params.items()}


def _summary(record: Any) -> str:
    parts = [f"state: {record.state}", f"stage: {record.stage or '-'}"]
    if record.failure_kind is not None:
        parts += [f"failure: {record.failure_kind.value}", f"reason: {record.failure_reason}"]
    return "  \n".join(parts)
