"""What the runner's modules share: the spec as stored with its study, and the objective
that trains a spec's task."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from hptune._paths import file_name
from hptune.exceptions import HptuneError
from hptune.spec import Budget, StudySpec
from hptune.study import Study, _records
from hptune.study._storage import printable_url
from hptune.training.options import TrainingOptions

SPEC_ATTR = _records.SPEC


def spec_to_dict(spec: StudySpec) -> dict[str, Any]:
    """The spec as a JSON-able dict (stored with the study)."""
    data = dataclasses.asdict(spec)
    data.pop("lines", None)  # tuple keys; only the spec file's errors need them
    data["storage"] = printable_url(spec.storage)  # never a password at rest
    for options in data["tracking"].values():  # an MLflow server's URI may hold a password
        if isinstance(options.get("tracking_uri"), str):
            options["tracking_uri"] = printable_url(options["tracking_uri"])
    if spec.warm_start is not None and spec.warm_start["storage"] is not None:
        data["warm_start"]["storage"] = printable_url(spec.warm_start["storage"])
    data["training"] = spec.training.to_mapping()  # what a spec file would say
    return data


def spec_from_dict(data: dict[str, Any]) -> StudySpec:
    data = dict(data)
    data["budget"] = Budget(**data.get("budget", {}))
    data["training"] = TrainingOptions.from_mapping(data.get("training"))
    return StudySpec(**data)


def stored_spec(study: Study) -> StudySpec:
    """The spec a study was run from; an error for studies made in Python."""
    return spec_in(study.optuna_study.user_attrs, study.name)


def spec_in(attrs: Mapping[str, Any], name: str) -> StudySpec:
    """The spec stored in the user attributes ``attrs`` of study ``name`` (as
    :func:`hptune.study._study.study_attrs` reads them); an error for studies made in
    Python."""
    data = attrs.get(SPEC_ATTR)
    if data is None:
        raise HptuneError(
            f"study {name!r} was not run from a spec (created in Python?), so there is no "
            "task to run; use study.optimize(objective) from Python."
        )
    return spec_from_dict(data)


#: Where ``training.save_best`` writes each trial's best weights: ``<OUTPUT_DIR>/<study>/``.
OUTPUT_DIR = "hptune-out"


def make_objective(spec: StudySpec) -> Any:
    """The picklable objective that trains ``spec.task`` for one config."""
    from hptune.runner._objective import TaskObjective

    return TaskObjective(
        task=spec.task,
        epochs=spec.budget.epochs,
        metric=spec.metric,
        options=spec.training,
        output_dir=f"{OUTPUT_DIR}/{file_name(spec.name)}" if spec.training.save_best else None,
    )
