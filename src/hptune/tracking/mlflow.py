"""MLflow: one parent run per study, one nested child run per trial. Needs
``pip install 'hptune[mlflow]'`` (the ``mlflow-skinny`` client, 2.10 or later; the full
``mlflow`` package adds its UI: ``mlflow ui --backend-store-uri sqlite:///mlflow.db``).

Layout in the store (any tracking URI MLflow's client takes; the default is the SQLite file
``sqlite:///mlflow.db`` in the working directory, MLflow's own default since it put its
file store, ``file:./mlruns``, in maintenance mode):

* **Experiment**: ``experiment`` (default: the study's name), created when missing.
* **Parent run** per study, named after it and tagged ``hptune.role = study`` and
  ``hptune.study_key`` (a hash of the study name, which MLflow's filter syntax can quote
  safely). A later run of the study (``hptune resume``) finds it again by that tag and
  continues it. Its params: direction, metric, seed, strategy, pruner (and the warm start's
  source); its metric ``best_<metric>``: the study's best value after each complete trial,
  at the count of complete trials as step (the order they finished in: with several
  workers a trial's number is not that order, and the curve would go down).
* **Child run** per trial, ``trial-<number>``, nested under the parent (MLflow's
  ``mlflow.parentRunId`` tag): params are the config as dotted keys and ``seed``; tags
  ``hptune.trial``, ``hptune.state``, ``hptune.stage``, and for a failure
  ``hptune.failure_kind`` and ``hptune.failure_reason``, and the objective's other
  attributes as ``attrs.<name>`` (``attrs.device``); metrics are the curve (the study's
  metric at each reported step), ``value`` (the trial's value), ``duration_s`` and the
  objective's numeric attributes as ``attrs.<name>`` (``attrs.test_accuracy``: the recipe's
  ``val_accuracy`` attribute, its best epoch's, must not mix with the curve). Its status is FINISHED for a
  COMPLETE trial, KILLED for a PRUNED one, FAILED for a FAILED one.

Limit: two drivers that open a study's first parent run at the same moment create two.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from typing import Any

from hptune._checks import Pattern, optional
from hptune._extras import require_extra
from hptune._secrets import printable_url, scrub
from hptune.exceptions import HptuneError, one_line
from hptune.tracking._base import Tracker, flat_params, numeric_attrs, study_params

#: Run statuses by trial state.
_STATUS = {"COMPLETE": "FINISHED", "PRUNED": "KILLED", "FAILED": "FAILED"}
#: Kept below MLflow's own limits on a param's and a tag's length, and a batch's size.
_PARAM_LENGTH, _TAG_LENGTH, _BATCH = 500, 5000, 1000
_NOT_KEY = str.maketrans({c: "_" for c in "!\"#$%&'()*+,;<=>?@[\\]^`{|}~"})


class MlflowTracker(Tracker):
    """Log every trial of a study to MLflow, nested under one parent run per study.

    Args:
        tracking_uri: Where the runs go: ``sqlite:///mlflow.db`` (default), a server's
            ``http://...``, or ``file:./mlruns`` (MLflow 3 refuses its file store unless
            ``MLFLOW_ALLOW_FILE_STORE=true``).
        experiment: The MLflow experiment; default: the study's name.

    Example:
        >>> tracker = MlflowTracker(tracking_uri="sqlite:///mlflow.db")  # doctest: +SKIP
        >>> study.optimize(objective, n_trials=20, trackers=[tracker])  # doctest: +SKIP
    """

    name = "mlflow"
    option_rules = {
        "tracking_uri": Pattern(r"\S+", "a tracking URI such as sqlite:///mlflow.db"),
        "experiment": optional(Pattern(r"\S(.{0,498}\S)?", "an experiment name")),
    }

    def __init__(
        self, tracking_uri: str = "sqlite:///mlflow.db", experiment: str | None = None
    ) -> None:
        super().__init__(tracking_uri=tracking_uri, experiment=experiment)
        self.tracking_uri, self.experiment = tracking_uri, experiment
        self._entities = require_extra("mlflow.entities", "mlflow", "hptune.tracking.mlflow")
        self._client: Any = None
        self._parent: str | None = None
        self._experiment_id: str | None = None
        self._best: float | None = None
        self._held: set[int] = set()
        self._maximize = True

    def start(self, study: Any) -> None:
        from mlflow.tracking import MlflowClient

        # Its INFO lines about creating a new store's tables would cut into the progress bar.
        logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)

        try:
            self._client = MlflowClient(tracking_uri=self.tracking_uri)
            self._experiment_id = self._experiment(self.experiment or study.name)
            self._parent = self._parent_run(study)
            self._held = self._trials_in_store()
        except Exception as exc:  # MlflowException and the store's own errors
            raise HptuneError(
                f"MLflow tracking at {printable_url(self.tracking_uri)!r} failed: "
                f"{scrub(one_line(exc), self.tracking_uri)}; check "
                "tracking.mlflow.tracking_uri (e.g. sqlite:///mlflow.db)."
            ) from exc
        self._maximize = study.direction == "maximize"
        # The best curve so far: the complete trials the store holds (those it lacks are
        # logged next, each a point of the curve).
        done = [
            r.value
            for r in study.trials
            if r.state == "COMPLETE" and r.value is not None and r.number in self._held
        ]
        self._best = (max if self._maximize else min)(done) if done else None
        self._n_complete = len(done)
        self._key = _study_key(study.name)
        self._study_name = study.name

    def _experiment(self, name: str) -> str:
        found = self._client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        try:
            return self._client.create_experiment(name)
        except Exception:  # created by another driver meanwhile
            found = self._client.get_experiment_by_name(name)
            if found is None:
                raise
            return found.experiment_id

    def _parent_run(self, study: Any) -> str:
        key = _study_key(study.name)
        runs = self._client.search_runs(
            [self._experiment_id],
            filter_string=f"tags.`hptune.study_key` = '{key}' and tags.`hptune.role` = 'study'",
            max_results=1,
        )
        if runs:
            self._client.update_run(runs[0].info.run_id, status="RUNNING")
            return runs[0].info.run_id
        tags = {"hptune.study": study.name, "hptune.study_key": key, "hptune.role": "study"}
        run = self._client.create_run(self._experiment_id, tags=tags, run_name=study.name)
        params = [
            self._entities.Param(k, _text(v, _PARAM_LENGTH)) for k, v in study_params(study).items()
        ]
        self._client.log_batch(run.info.run_id, params=params)
        return run.info.run_id

    def logged_trials(self) -> set[int]:
        """The trials the store held when this tracker started (read once, in :meth:`start`,
        which needs them for the best curve)."""
        return set(self._held)

    def _trials_in_store(self) -> set[int]:
        numbers: set[int] = set()
        token = None
        while True:
            page = self._client.search_runs(
                [self._experiment_id],
                filter_string=f"tags.`mlflow.parentRunId` = '{self._parent}'",
                max_results=1000,
                page_token=token,
            )
            numbers.update(int(r.data.tags["hptune.trial"]) for r in page)
            token = page.token
            if not token:
                return numbers

    def log_trial(self, record: Any) -> None:
        tags = {
            "mlflow.parentRunId": self._parent,
            "hptune.study": self._study_name,
            "hptune.study_key": self._key,
            "hptune.role": "trial",
            "hptune.trial": str(record.number),
            "hptune.state": record.state,
            "hptune.stage": record.stage or "",
        }
        if record.failure_kind is not None:
            tags["hptune.failure_kind"] = record.failure_kind.value
            tags["hptune.failure_reason"] = _text(record.failure_reason, _TAG_LENGTH)
        for key, value in record.attrs.items():
            if key not in numeric_attrs(record.attrs):
                tags[f"attrs.{_key(key)}"] = _text(value, _TAG_LENGTH)
        run = self._client.create_run(
            self._experiment_id, tags=tags, run_name=f"trial-{record.number}"
        )
        params = {_key(k): v for k, v in flat_params(record.config).items()}
        params["seed"] = record.seed
        entities = self._entities
        self._log(
            run.info.run_id,
            [entities.Metric(k, v, *stamp) for k, v, *stamp in _metrics(record, self.metric)],
            [entities.Param(k, _text(v, _PARAM_LENGTH)) for k, v in params.items()],
        )
        self._client.set_terminated(run.info.run_id, status=_STATUS[record.state])
        self._log_best(record)

    def _log(self, run_id: str, metrics: list[Any], params: list[Any]) -> None:
        """``log_batch`` within MLflow's limits per request (100 params, 1000 metrics)."""
        for i in range(0, len(params), 100):
            self._client.log_batch(run_id, params=params[i : i + 100])
        for i in range(0, len(metrics), _BATCH):
            self._client.log_batch(run_id, metrics=metrics[i : i + _BATCH])

    def _log_best(self, record: Any) -> None:
        value = record.value
        if record.state != "COMPLETE" or value is None or not math.isfinite(value):
            return
        if self._best is None or (value > self._best if self._maximize else value < self._best):
            self._best = value
        self._n_complete += 1
        self._client.log_metric(
            self._parent, f"best_{_key(self.metric)}", self._best, step=self._n_complete
        )

    def close(self, interrupted: bool = False) -> None:
        if self._client is not None and self._parent is not None:
            self._client.set_terminated(
                self._parent, status="KILLED" if interrupted else "FINISHED"
            )


def _metrics(record: Any, metric: str) -> list[tuple[str, float, int, int]]:
    """``(key, value, timestamp ms, step)`` of a trial's curve, value, duration and
    numeric attributes (as ``attrs.<name>``); values that are not finite are left out."""
    now = int(time.time() * 1000)
    rows = [
        (_key(metric), v, now, int(step)) for step, v in sorted(record.intermediate_values.items())
    ]
    if record.value is not None and record.state != "FAILED":
        rows.append(("value", record.value, now, 0))
    if record.duration is not None:
        rows.append(("duration_s", record.duration, now, 0))
    rows += [(f"attrs.{_key(k)}", v, now, 0) for k, v in numeric_attrs(record.attrs).items()]
    return [row for row in rows if isinstance(row[1], int | float) and math.isfinite(row[1])]


def _study_key(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:16]


def _key(name: str) -> str:
    """A name MLflow accepts as a param or metric key (letters, digits, ``_-. /:``)."""
    return str(name).translate(_NOT_KEY).replace("..", "_") or "_"


def _text(value: Any, limit: int) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
