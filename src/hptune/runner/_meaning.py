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
from hptune.runner._base import stored_spec
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
    from hptune.study import load_study

    try:
        stored = stored_spec(load_study(spec.name, spec.storage))
    except HptuneError:
        return  # no such study or database (yet), or not run from a spec
    changes = [
        f"{key} {_shown(old)} -> {_shown(new)}" for key, old, new in _meaning_changes(stored, spec)
    ]
    if changes:
        restore = "that value" if len(changes) == 1 else "those values"
        raise HptuneError(
            f"study {spec.name!r} was run with a different spec: {', '.join(changes)}; its "
            "trials would not be comparable with new ones. Run it as a new study (--name NEW, "
            f"or another name: in the spec), or restore {restore} to continue it."
        )


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
