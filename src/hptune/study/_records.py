"""What hptune records about each trial, and the immutable record a study hands back.

Everything lives in Optuna user attributes under the ``hptune.`` prefix, so a study written
by hptune stays an ordinary Optuna study (``optuna.load_study`` and optuna-dashboard read
it) while :class:`TrialRecord` gives the same facts typed.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import hashlib
import json
import os
import platform
import socket
import subprocess
import sys
from importlib import metadata
from typing import Any

import numpy as np
import optuna

from hptune.execution.base import FailureKind

#: Trial user attribute holding everything the driver records about a trial, written once
#: when the trial ends (one storage write, not one per fact): the facts below, by their
#: short names (:data:`RECORD_FIELDS`). Studies written before it have one attribute per fact
#: (the keys below); :func:`fact` reads either.
TRIAL = "hptune.trial"
#: The facts' keys as attributes of their own (how studies written before :data:`TRIAL`
#: store them; a retry's seed is still enqueued under :data:`SEED`).
SEED = "hptune.seed"
CONFIG = "hptune.config"
CONFIG_HASH = "hptune.config_hash"
ENV = "hptune.env"
#: What the trial's environment was set to (threads, global seed; execution/_environment).
RUNTIME = "hptune.runtime"
#: Seconds the objective ran (or the worker ran it, for a trial its worker lost), without
#: the time the trial waited for a worker to start.
DURATION = "hptune.duration"
#: The strategy stage a trial was asked in: in its record, and also as an attribute of its
#: own from the trial's creation when the strategy reads the stages of running trials
#: (``Strategy.reads_running_stages``).
STAGE = "hptune.stage"
#: ``{"study": name, "trial": number}`` on a trial copied from another study by a warm
#: start (``study/_warm.py``); such a trial does not use up the trial budget.
WARM_START_FROM = "hptune.warm_start_from"
#: ``[number, index]`` on a trial that re-trains the config of search trial ``number`` with
#: a fresh seed, the ``index``-th of its confirmation (``study/_confirm.py``); a retry of it
#: carries it too. Such a trial is never pruned and the sampler does not ask for it.
REPEAT_OF = "hptune.repeat_of"
FAILURE = "hptune.failure_reason"
#: The :class:`~hptune.execution.FailureKind` of a FAILED trial (its value); see
#: :func:`failure_kind` for studies written before it was recorded.
FAILURE_KIND = "hptune.failure_kind"
TRACEBACK = "hptune.traceback"
#: ``"epoch"`` when a study's trials report once per epoch (a task trained by the recipe),
#: else ``"step"``; set by the runner, read by the report to label learning curves.
STEP_UNIT = "hptune.step_unit"
#: Study user attribute: the spec a study was run from (``runner.spec_to_dict``).
SPEC = "hptune.spec"
#: Study user attribute: why the last ``optimize`` run stopped, ``{"reason", "at",
#: "trials"}`` (written by the driver; ``StopReason`` values).
STOP = "hptune.stop"

#: Study user attributes ``hptune.env.<id>``: each driver's environment (versions, host,
#: commit), written once per driver run; a trial's record names its ``env`` by id.
ENV_PREFIX = "hptune.env."
#: Fact key -> its short name inside :data:`TRIAL`.
RECORD_FIELDS = {
    SEED: "seed", CONFIG: "config", CONFIG_HASH: "config_hash", ENV: "env",
    RUNTIME: "runtime", DURATION: "duration", STAGE: "stage", FAILURE: "failure_reason",
    FAILURE_KIND: "failure_kind", TRACEBACK: "traceback",
}  # fmt: skip


def fact(user_attrs: dict[str, Any], key: str, default: Any = None) -> Any:
    """A recorded fact of a trial (``key`` one of :data:`RECORD_FIELDS`): from its
    :data:`TRIAL` record, else from the attribute of its own that studies written before
    the record used."""
    record = user_attrs.get(TRIAL)
    if record is not None and RECORD_FIELDS[key] in record:
        return record[RECORD_FIELDS[key]]
    return user_attrs.get(key, default)


def write_record(storage: Any, trial_id: int, user_attrs: dict[str, Any], **facts: Any) -> None:
    """Add ``facts`` (short names: ``seed``, ``config``, ``failure_kind``, ...) to a trial's
    :data:`TRIAL` record, in one write. ``user_attrs`` are the trial's current ones."""
    unknown = set(facts) - set(RECORD_FIELDS.values())
    assert not unknown, f"not a recorded fact: {unknown}"
    record = dict(user_attrs.get(TRIAL) or {})
    record.update({k: v for k, v in facts.items() if v is not None})
    storage.set_trial_user_attr(trial_id, TRIAL, record)


def store_env(ostudy: optuna.Study, env: dict[str, Any]) -> str:
    """Record a driver's environment once in the study and return its id (a hash of it:
    drivers with the same environment share one entry, and none overwrites another's)."""
    env_id = hashlib.sha256(canonical_json(env).encode()).hexdigest()[:12]
    if ENV_PREFIX + env_id not in ostudy.user_attrs:
        ostudy.set_user_attr(ENV_PREFIX + env_id, env)
    return env_id


_STATE_NAMES = {
    optuna.trial.TrialState.COMPLETE: "COMPLETE",
    optuna.trial.TrialState.PRUNED: "PRUNED",
    optuna.trial.TrialState.FAIL: "FAILED",
    optuna.trial.TrialState.RUNNING: "RUNNING",
    optuna.trial.TrialState.WAITING: "WAITING",
}


#: Written on diverged trials before kinds were recorded; read only by :func:`failure_kind`.
_LEGACY_PENALIZE = "hptune.penalize"
#: How the messages written before kinds were recorded begin, for each kind. Read only by
#: :func:`failure_kind`, for those old trials; new ones carry their kind.
_LEGACY_PREFIXES = (
    (FailureKind.INTERRUPTED, ("interrupted",)),
    (FailureKind.STALE, ("stale",)),
    (FailureKind.DUPLICATE, ("duplicate",)),
    (FailureKind.WORKER_DIED, ("worker killed by signal", "worker exited with code", "Ray worker died")),
    (FailureKind.TIMEOUT, ("timed out after",)),
    (FailureKind.DIVERGED, ("TrialDiverged", "objective returned nan", "objective returned inf", "objective returned -inf")),
    (FailureKind.OUT_OF_MEMORY, ("MemoryError", "OutOfMemoryError")),
)  # fmt: skip


def failure_kind(trial: optuna.trial.FrozenTrial) -> FailureKind | None:
    """The kind of failure of a FAILED trial (None for any other state).

    Read from the trial's ``hptune.failure_kind``. A trial written before kinds were
    recorded has only its message: its kind is derived from how that message begins, here
    and nowhere else (a trial failed without any hptune record, by Optuna itself, is an
    ``ERROR``).
    """
    if trial.state != optuna.trial.TrialState.FAIL:
        return None
    stored = fact(trial.user_attrs, FAILURE_KIND)
    if stored is not None:
        return FailureKind(stored)
    if trial.user_attrs.get(_LEGACY_PENALIZE):
        return FailureKind.DIVERGED
    reason = str(fact(trial.user_attrs, FAILURE, ""))
    for kind, prefixes in _LEGACY_PREFIXES:
        if reason.startswith(prefixes):
            return kind
    return FailureKind.ERROR


def write_failure(
    storage: Any,
    trial_id: int,
    user_attrs: dict[str, Any],
    kind: FailureKind,
    reason: str,
    traceback: str | None = None,
    **facts: Any,
) -> None:
    """Record why a trial failed (its kind, its one-line reason, its traceback, and any
    other ``facts``) in one write, before its state is set to FAIL; every writer of a
    failure goes through here."""
    write_record(
        storage, trial_id, user_attrs,
        failure_kind=kind.value, failure_reason=reason, traceback=traceback, **facts,
    )  # fmt: skip


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: equal configs give equal text."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_jsonable)


def _jsonable(obj: Any) -> Any:
    # numpy scalars reach configs through samplers; store them as plain numbers.
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"{type(obj).__name__} {obj!r} is not JSON-serializable")


def config_hash(config: dict[str, Any]) -> str:
    """sha256 (hex) of the canonical JSON of ``config``; equal configs, equal hashes.

    Example:
        >>> config_hash({"b": 1, "a": 0.5}) == config_hash({"a": 0.5, "b": 1})
        True
    """
    return hashlib.sha256(canonical_json(config).encode()).hexdigest()


def derive_trial_seed(study_seed: int, number: int) -> int:
    """The seed of trial ``number``: ``SeedSequence([study_seed, number])``'s first 32-bit word.

    A pure function of the two integers, so any trial can be re-run with its seed alone and
    neighbouring trials get statistically independent streams (which ``study_seed + number``
    would not guarantee).
    """
    words = np.random.SeedSequence([study_seed, number]).generate_state(1, dtype=np.uint32)
    return int(words[0])


def derive_sampler_seed(study_seed: int, n_existing_trials: int) -> int:
    """The seed of a sampler built when the study already holds ``n_existing_trials``.

    A resumed study must not replay the random draws of its first session, so the sampler's
    seed depends on how far the study had got; a fresh study (0 trials) is reproducible.
    """
    words = np.random.SeedSequence([study_seed, n_existing_trials, 1]).generate_state(1)
    return int(words[0])


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _git_commit(cwd: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=2,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and commit else None


def capture_environment() -> dict[str, Any]:
    """Versions, machine and code revision, captured once per driver run.

    Versions come from package metadata (no import of torch); ``git_commit`` is the HEAD of
    the git repository containing the working directory, or ``None`` outside one.
    """
    return {
        "python": platform.python_version(),
        "torch": _version("torch"),
        "optuna": _version("optuna"),
        "hptune": _version("hptune"),
        "numpy": _version("numpy"),
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
        "executable": sys.executable,
        "git_commit": _git_commit(os.getcwd()),
    }


@dataclasses.dataclass(frozen=True)
class TrialRecord:
    """An immutable snapshot of one trial of a study.

    Args:
        number: The trial's number in its study.
        state: ``"COMPLETE"``, ``"PRUNED"``, ``"FAILED"``, ``"RUNNING"`` or ``"WAITING"``.
        value: The objective value (the last reported value for PRUNED; None for FAILED).
        config: The plain nested dict the objective received.
        params: The flat Optuna parameters (dotted paths) the config came from.
        intermediate_values: ``{step: value}`` reported with ``trial.report``.
        seed: The trial's seed (see :func:`derive_trial_seed`).
        duration: Seconds from start to end, None while running.
        failure_reason: One line saying why a FAILED trial failed (for people).
        failure_kind: What kind of failure it was (for decisions; see
            :class:`~hptune.execution.FailureKind`).
        config_hash: sha256 of the canonical JSON of ``config``.
        stage: The strategy stage that proposed it (``"tpe"``, ``"coarse"``, ``"fine"``...).
        env: Versions, host and git commit of the run that produced it.
        runtime: What its environment was set to: torch ``threads``, the ``seed`` of the
            global generators, ``deterministic`` (None for trials recorded before).
        attrs: What the objective recorded with ``trial.set_attr``.
        repeat_of: For a confirmation trial, the search trial whose config it re-trained
            with a fresh seed (see :mod:`hptune.study._confirm`).

    Example:
        >>> rec = TrialRecord(number=0, state="FAILED", value=None, config={"lr": 0.1},
        ...                   failure_reason="objective returned nan")
        >>> "objective returned nan" in repr(rec)
        True
    """

    number: int
    state: str
    value: float | None
    config: dict[str, Any]
    params: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)
    intermediate_values: dict[int, float] = dataclasses.field(default_factory=dict, repr=False)
    seed: int | None = None
    duration: float | None = None
    failure_reason: str | None = None
    failure_kind: FailureKind | None = None
    config_hash: str | None = dataclasses.field(default=None, repr=False)
    stage: str | None = None
    env: dict[str, Any] | None = dataclasses.field(default=None, repr=False)
    attrs: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)
    runtime: dict[str, Any] | None = dataclasses.field(default=None, repr=False)
    repeat_of: int | None = None


def repeated_trial(frozen: optuna.trial.FrozenTrial) -> int | None:
    """The search trial whose config ``frozen`` re-trains with a fresh seed (None for a
    trial of the search itself); see :data:`REPEAT_OF`."""
    slot = frozen.user_attrs.get(REPEAT_OF)
    return None if slot is None else int(slot[0])


def record_from_frozen(
    frozen: optuna.trial.FrozenTrial, study_attrs: dict[str, Any] | None = None
) -> TrialRecord:
    """Read a :class:`TrialRecord` back from an Optuna trial written by the driver.

    ``study_attrs`` (the study's user attributes) resolve the trial's environment, which
    its record names by id (:func:`store_env`); without them ``env`` is that id.

    The record owns copies of the trial's nested values: the trial may be Optuna's cached
    object (``get_trials(deepcopy=False)``), which editing a record must never change.
    """
    ua = copy.deepcopy(frozen.user_attrs)
    duration = fact(ua, DURATION)
    if duration is None:  # recorded before DURATION was, or still running
        duration = _duration(frozen.datetime_start, frozen.datetime_complete)
    env = fact(ua, ENV)
    if isinstance(env, str) and study_attrs is not None:
        env = copy.deepcopy(study_attrs.get(ENV_PREFIX + env, env))
    state = _STATE_NAMES[frozen.state]
    return TrialRecord(
        number=frozen.number,
        state=state,
        value=frozen.value if state != "FAILED" else None,
        config=fact(ua, CONFIG, {}),
        params=dict(frozen.params),
        intermediate_values=dict(frozen.intermediate_values),
        seed=fact(ua, SEED),
        duration=duration,
        failure_reason=fact(ua, FAILURE),
        failure_kind=failure_kind(frozen),
        config_hash=fact(ua, CONFIG_HASH),
        stage=fact(ua, STAGE),
        env=env,
        runtime=fact(ua, RUNTIME),
        repeat_of=repeated_trial(frozen),
        attrs={k: v for k, v in ua.items() if not k.startswith("hptune.")},
    )


def _duration(start: datetime.datetime | None, end: datetime.datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (end - start).total_seconds()
