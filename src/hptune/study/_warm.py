"""Warm starts: a new study begins with what an old one learned.

When a study is **created** with ``warm_start_from`` (never when it is re-opened), each
trial of the old study that is evidence about a config and whose config fits the new
space is added to the new study as a finished trial, before its first trial is asked for
(and before ``hptune.space`` is written, so a driver that loads the study meanwhile waits
for the copies too). The new study's sampler then reads them as history, as it would its
own trials: widening a range or adding a choice keeps the knowledge of the old study.

What is copied, and why:

* **COMPLETE** and **PRUNED** trials, with their values and learning curves: both are fair
  evaluations (TPE reads a pruned trial's curve, ranking it below the complete ones).
* **FAILED** trials of a kind the sampler learns from (``_view.PENALIZED``: diverged, out of
  memory), still FAILED with their kind, so the new study's sampler keeps avoiding the
  region they came from. Other failures (an error, a timeout, a dead worker, an interrupt)
  say nothing about the config and are left behind.
* A config **fits** when :meth:`Space.flatten` accepts it: the same keys, each value inside
  its new dimension, a branch the new space has, the same constants. A config that lacks a
  new parameter does not fit (there is no value to give the sampler for it). The copy is
  stored with the *new* space's distributions, which Optuna needs to treat it as a trial of
  the same search space (a categorical's choices must be equal to be compatible).

A copy keeps the old trial's config, seed, config hash, curve, environment, duration and
the objective's attributes, gets ``hptune.stage = "warm-start"`` and
``hptune.warm_start_from = {"study": old name, "trial": old number}``, and nothing else of
the old trial (no retry or heartbeat attributes: those numbers belong to the old study). A
copy does not use up the new study's trial budget (``_budget.counts``: the budget is what
this study runs), is never retried or run again (it is not FAILED of a retryable kind, nor
WAITING), and holds no grid point: a grid runs all its points. It does count as the study's
best trial when it is: its value was measured under the same meaning, which the runner
checks for a spec (task, metric, epochs, training) and a Python caller asserts.
"""

from __future__ import annotations

import logging
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from hptune.exceptions import ConfigError
from hptune.space import Space
from hptune.study import _records
from hptune.study._view import PENALIZED

logger = logging.getLogger("hptune.study")

#: The stage of a copied trial (``TrialRecord.stage``).
STAGE = "warm-start"
#: Study user attribute: ``{"study", "storage", "trials"}``, where the copies came from.
STUDY_ATTR = "hptune.warm_start"
#: The hptune trial attributes a copy keeps (the rest belong to the old study's run).
_KEPT = (
    _records.CONFIG, _records.CONFIG_HASH, _records.SEED, _records.ENV, _records.RUNTIME,
    _records.DURATION, _records.FAILURE, _records.FAILURE_KIND,
)  # fmt: skip


def is_evidence(trial: FrozenTrial) -> bool:
    """Whether an old trial says something about its config (see the module docstring)."""
    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    return trial.state == TrialState.FAIL and _records.failure_kind(trial) in PENALIZED


def copy_of(
    trial: FrozenTrial, space: Space, source: str, source_attrs: dict[str, Any] | None = None
) -> FrozenTrial | None:
    """The finished trial that carries ``trial`` (of study ``source``, whose user attributes
    are ``source_attrs``) into a study of ``space``; None when its config does not fit."""
    config = _records.fact(trial.user_attrs, _records.CONFIG)
    if config is None:
        return None
    try:
        params = space.flatten(config)
        distributions = space.distributions(config)
    except ConfigError:
        return None
    # One record, whichever layout the old study has; its environment goes in by value
    # (the new study does not hold the old one's environments).
    record = {
        name: value
        for key, name in _records.RECORD_FIELDS.items()
        if key in _KEPT and (value := _records.fact(trial.user_attrs, key)) is not None
    }
    env = record.get("env")
    if isinstance(env, str) and source_attrs is not None:
        record["env"] = source_attrs.get(_records.ENV_PREFIX + env, env)
    record["stage"] = STAGE
    attrs = {k: v for k, v in trial.user_attrs.items() if not k.startswith("hptune.")}
    attrs[_records.TRIAL] = record
    attrs[_records.WARM_START_FROM] = {"study": source, "trial": trial.number}
    try:
        return optuna.trial.create_trial(
            state=trial.state,
            value=None if trial.state == TrialState.FAIL else trial.value,
            params=params,
            distributions=distributions,
            user_attrs=attrs,
            intermediate_values=dict(trial.intermediate_values),
        )
    except ValueError:  # a value Optuna's distribution refuses (e.g. off its int step)
        return None


def check_direction(source: optuna.Study, direction: str) -> None:
    """Refuse a source study that optimizes the other way (``direction`` is the new one's).

    Raises:
        ConfigError: The two directions differ.
    """
    old = source.direction.name.lower()
    if old != direction:
        raise ConfigError(
            f"warm_start_from: study {source.study_name!r} was run to {old} its value and "
            f"this one to {direction} it, so its results would teach the sampler the wrong "
            "way; warm-start only from a study of the same direction."
        )


def warm_start(target: optuna.Study, space: Space, source: optuna.Study, where: str) -> int:
    """Copy the trials of ``source`` that fit ``space`` into the new study ``target``
    (whose direction :func:`check_direction` accepted); returns how many were copied and
    records where from (:data:`STUDY_ATTR`)."""
    evidence = [t for t in source.get_trials(deepcopy=False) if is_evidence(t)]
    attrs = source.user_attrs
    copies = [c for t in evidence if (c := copy_of(t, space, source.study_name, attrs)) is not None]
    for frozen in copies:
        target.add_trial(frozen)
    target.set_user_attr(
        STUDY_ATTR, {"study": source.study_name, "storage": where, "trials": len(copies)}
    )
    if evidence and not copies:
        logger.warning(
            "warm start: none of the %d finished trials of study %r fits the new space; "
            "the study starts cold",
            len(evidence),
            source.study_name,
        )
    return len(copies)


def is_copy(trial: FrozenTrial) -> bool:
    """Whether a trial was copied from another study by a warm start."""
    return _records.WARM_START_FROM in trial.user_attrs


def source_of(value: Any) -> tuple[str, Any] | None:
    """``warm_start_from`` as ``(name, storage or None)``, or None when it is a Study.

    Raises:
        ConfigError: Neither a Study, a name, nor a ``(name, storage)`` pair.
    """
    if isinstance(value, str) and value:
        return value, None
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str) and value[0]:
        return value[0], value[1]
    raise ConfigError(
        f"create_study: warm_start_from must be a Study, a study name or a (name, storage) "
        f"pair, got {value!r}; e.g. warm_start_from=('old-study', 'sqlite:///hptune.db')."
    )
