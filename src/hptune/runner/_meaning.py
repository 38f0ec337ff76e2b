"""What a trial means, and the refusal of a spec that would change it for an existing study.

A study's trials are comparable only while what a config means stays the same: the task,
the metric and its direction, the epochs a trial trains, the recipe's options (all but
where the best weights are saved), the space and the seed its trials derive theirs from.
Re-running a spec that changes one of them is refused, naming each change; the trial
budget, timeout, workers, retries, strategy, pruner and storage may change freely.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from hptune.exceptions import HptuneError
from hptune.runner._base import spec_in
from hptune.space import space_changes
from hptune.spec import StudySpec
from hptune.training.options import TrainingOptions

#: Parts of a spec that change what a trial's config means.
MEANING = ("task", "metric", "direction", "budget.epochs", "training", "space", "seed")
#: Training options that change nothing about a trial's result.
_OUTPUT_ONLY_TRAINING = ("save_best",)


def check_same_meaning(spec: StudySpec) -> None:
    """Raise HptuneError when the spec's study exists and was run from a spec that differs
    in what a trial means (:data:`MEANING`). Reads the study if it exists; creates nothing.
    """
    from hptune.study._study import study_attrs

    try:
        stored = spec_in(study_attrs(spec.name, spec.storage), spec.name)
    except HptuneError:
        return  # no such study or database (yet), or not run from a spec
    found = _meaning_changes(stored, spec)
    if not found:
        return
    changes = [f"{key} {_shown(old)} -> {_shown(new)}" for key, old, new in found]
    restore = "that value" if len(changes) == 1 else "those values"
    # Only a new space (or seed) leaves the old trials comparable: then a new study can
    # start from them.
    warm = ""
    if not [key for key, _, _ in found if not _warm_startable(key)]:
        warm = f" with `warm_start: {{study: {spec.name}}}` to keep what its trials learned"
    raise HptuneError(
        f"study {spec.name!r} was run with a different spec: {', '.join(changes)}; its "
        f"trials would not be comparable with new ones. Run it as a new study{warm} "
        f"(--name NEW, or another name: in the spec), or restore {restore} to continue it."
    )


def check_warm_start(spec: StudySpec) -> None:
    """Raise HptuneError when the spec's ``warm_start`` study cannot seed its study: it
    does not exist, was not run from a spec, or differs in what a trial means other than
    the space and the seed. Nothing is checked when the spec's own study exists (a warm
    start is read only when a study is created). Reads; creates nothing."""
    from hptune.study._study import study_attrs

    if spec.warm_start is None or _exists(spec):
        return
    name = spec.warm_start["study"]
    source = study_attrs(name, spec.warm_start["storage"] or spec.storage)
    try:
        old = spec_in(source, name)
    except HptuneError:
        raise HptuneError(
            f"study {name!r} was not run from a spec, so hptune cannot check that its trials "
            "mean what this spec's will; warm-start it from Python with "
            "create_study(..., warm_start_from=...)."
        ) from None
    changes = [
        f"{key} {_shown(before)} -> {_shown(after)}"
        for key, before, after in _meaning_changes(old, spec)
        if not _warm_startable(key)
    ]
    if changes:
        raise HptuneError(
            f"study {name!r} was run with a different {', '.join(changes)}, so its trials' "
            "values do not measure what this study's will; warm-start from a study that "
            "differs only in its space and seed."
        )


def _warm_startable(key: str) -> bool:
    """Whether a change of ``key`` leaves old trials usable by a warm start."""
    return key == "seed" or key == "space" or key.startswith("space.")


def _exists(spec: StudySpec) -> bool:
    from hptune.study._study import study_attrs

    try:
        study_attrs(spec.name, spec.storage)
    except HptuneError:
        return False
    return True


def _meaning_changes(old: StudySpec, new: StudySpec) -> list[tuple[str, Any, Any]]:
    """``(key path, stored value, new value)`` for each part of :data:`MEANING` that differs."""
    changes = []
    for key in ("task", "metric", "direction"):
        if getattr(old, key) != getattr(new, key):
            changes.append((key, getattr(old, key), getattr(new, key)))
    if old.budget.epochs != new.budget.epochs:
        changes.append(("budget.epochs", old.budget.epochs, new.budget.epochs))
    for field in dataclasses.fields(TrainingOptions):
        before, after = getattr(old.training, field.name), getattr(new.training, field.name)
        if field.name not in _OUTPUT_ONLY_TRAINING and before != after:
            changes.append((f"training.{field.name}", before, after))
    changes += space_changes(old.space, new.space)
    if new.seed is not None and old.seed is not None and new.seed != old.seed:
        changes.append(("seed", old.seed, new.seed))
    return changes


def _shown(value: Any) -> str:
    return "(unset)" if value is None else repr(value)
