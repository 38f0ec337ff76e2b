"""Optuna's private names that hptune relies on, in one place, each with why the public API
does not serve. pyproject.toml bounds Optuna to the major version these were checked
against; a new major version is taken only after this module is checked again.

One more use cannot be a function here: :class:`hptune.study._view.StudyView` defines
``_get_trials``, because Optuna's samplers and pruners list a study's trials through that
private method, and the view must answer it to show them an edited history.
"""

from __future__ import annotations

import datetime
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.storages import BaseStorage


def storage(study: optuna.Study) -> BaseStorage:
    """The storage a study lives in (``Study._storage``).

    Why: hptune must create a trial without sampling it (the shared budget is checked in
    between), pop a WAITING trial race-free with ``set_trial_state_values``, and write
    attributes and states of trials it does not hold an ``optuna.Trial`` for (heartbeats,
    a peer's stale trial, a duplicate grid point). ``Study`` exposes no storage; its own
    ``Trial`` reaches the storage the same way.
    """
    return study._storage


def database_url(study: optuna.Study) -> Any:
    """The SQLAlchemy URL of the database a study lives in; None for other storages.

    Why: the driver checks that a SQLite file still exists while it writes to it. Optuna
    wraps its RDB storage in a cache (``_CachedStorage._backend``), and only the storage
    inside has the ``engine``.
    """
    inner = storage(study)
    inner = getattr(inner, "_backend", inner)
    engine = getattr(inner, "engine", None)
    return None if engine is None else engine.url


def new_trial(
    study: optuna.Study,
    user_attrs: dict[str, Any] | None = None,
    system_attrs: dict[str, Any] | None = None,
) -> int:
    """Create a RUNNING trial with these attributes, in one storage transaction, and return
    its id, without sampling anything (the storage call ``Study.ask`` makes, without its
    sampling and without popping queued trials).

    Why: ``Study.ask`` pops a WAITING trial when there is one and samples at once; the
    driver needs the two steps apart (``_budget.pop_waiting``, then the budget check, then
    sampling), and writes the trial's first attributes with the trial itself (a template
    trial, as ``enqueue_trial`` does) instead of one write each. Uses ``Study._study_id``,
    the key of every storage call about a study.
    """
    template = optuna.trial.FrozenTrial(
        number=-1,
        state=optuna.trial.TrialState.RUNNING,
        value=None,
        datetime_start=datetime.datetime.now(),
        datetime_complete=None,
        params={},
        distributions={},
        user_attrs=dict(user_attrs or {}),
        system_attrs=dict(system_attrs or {}),
        intermediate_values={},
        trial_id=-1,
    )
    return storage(study).create_new_trial(study._study_id, template_trial=template)


def trial_id(trial: optuna.trial.FrozenTrial | optuna.Trial) -> int:
    """A trial's storage id (``_trial_id``).

    Why: storage calls are keyed by trial id, and neither ``FrozenTrial`` nor ``Trial``
    has it public (only ``number``, which the storage maps the other way).
    """
    return trial._trial_id


def cached_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The study's trials as a sampler should read them: not copied, from the trial list
    Optuna caches while it asks one trial (``Study._get_trials(use_cache=True)``).

    Why: the public ``get_trials`` bypasses that cache, so a sampler that reads the trials
    once per ask through it would read the storage once more per ask; Optuna's own
    samplers read them this way.
    """
    return study._get_trials(deepcopy=False, states=None, use_cache=True)


def live_trial(study: optuna.Study, trial_id: int) -> optuna.Trial:
    """The ``optuna.Trial`` for a trial created by :func:`new_trial` or popped from the
    queue, so the space can sample it and the pruner judge its reports.

    Why: ``optuna.Trial`` is public, but its constructor is documented as not for users;
    ``Study.ask`` would create or pop the trial itself (see :func:`new_trial`). As
    ``Study.ask`` does, the trial list Optuna caches for samplers
    (``Study._thread_local.cached_all_trials``) is dropped here, before the trial samples:
    otherwise its sampler would read the list cached since this driver's last ``tell``,
    without the trials started since and without other drivers' results.
    """
    study._thread_local.cached_all_trials = None
    return optuna.Trial(study, trial_id)


def contains(dist: BaseDistribution, value: Any) -> bool:
    """Whether ``value`` lies in ``dist`` (``BaseDistribution._contains``).

    Why: Optuna has no public membership test; coarse-to-fine needs one to show its fine
    sampler only the trials inside the narrowed box.
    """
    return dist._contains(dist.to_internal_repr(value))


def hyperband_bracket(
    pruner: optuna.pruners.HyperbandPruner, study: Any, trial: optuna.trial.FrozenTrial
) -> int:
    """Optuna's bracket of ``trial`` (``HyperbandPruner._get_bracket_id``).

    Why: Optuna assigns brackets by a hash of the study's name, which a seeded hptune study
    must replace by its seed (``pruners.SeededHyperbandPruner``); there is no public hook.
    """
    return optuna.pruners.HyperbandPruner._get_bracket_id(pruner, study, trial)


def hyperband_bracket_pruner(
    pruner: optuna.pruners.HyperbandPruner, study: Any
) -> list[optuna.pruners.BasePruner] | None:
    """The per-bracket pruners of a Hyperband pruner (``_pruners``, built on first use by
    ``_try_initialization``), or None while it cannot build them yet.

    Why: Optuna's ``HyperbandPruner.prune`` hands each bracket's pruner a study object that
    reads trials from storage itself (``_BracketStudy``), bypassing any view of the study
    the caller passed; hptune's deterministic batches show the pruner a view (only the
    previous batches), so the bracket must be judged through that view instead.
    """
    if not pruner._pruners:
        pruner._try_initialization(study)
    return pruner._pruners or None


def tell(
    study: optuna.Study,
    trial: optuna.Trial,
    value: float | None = None,
    state: optuna.trial.TrialState | None = None,
) -> None:
    """Tell a trial's outcome, as ``Study.tell`` does, without reading the trial back.

    Why: ``Study.tell`` ends by reading the whole trial from storage to return it (six
    queries on an RDB storage); the driver needs it only for a retry or a listener, and
    reads it then. ``_tell_with_warning`` is the function ``Study.tell`` and Optuna's own
    ``optimize`` loop call to record the outcome.
    """
    from optuna.study._tell import _tell_with_warning

    _tell_with_warning(study, trial, value, state, suppress_warning=True)
