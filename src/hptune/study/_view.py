"""Show a sampler an edited history of the study, without touching what is stored.

Two edits use it:

* **Penalized failures.** Optuna's samplers learn only from COMPLETE (and, for TPE, PRUNED)
  trials: a trial that failed with a NaN loss or a divergence is invisible to them, so they
  keep proposing the region that diverges. The record must still say FAILED, with its
  reason. :class:`PenalizingSampler` therefore shows its sampler each such trial as COMPLETE
  with the worst finite value of the study (the smallest when maximizing), which ranks it
  below every real result: TPE puts it in its "bad" density, CMA-ES and GP rank or fit it
  as the worst point. We chose this over telling Optuna PRUNED (which only TPE reads, and
  which would misreport the trial) and over a fixed penalty such as ``-1e9`` (which would
  wreck the scale a GP fits).
* **Coarse-to-fine.** The fine stage's sampler sees only the trials inside the narrowed box,
  with their distributions narrowed to match (see ``strategies/_coarse_to_fine.py``).

The edit is a pure function of the stored trials (``transform``), applied in a thin proxy of
the Optuna study that every sampler call receives. Optuna's own ``HyperbandPruner`` uses the
same pattern to show each bracket's sampler only its bracket's trials.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Container, Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState

from hptune.execution.base import FailureKind
from hptune.study import _optuna, _records

#: Failures the sampler must learn from: the region they came from is bad (a config that
#: diverged, or that does not fit in memory: a batch too large, a model too wide).
PENALIZED = frozenset({FailureKind.DIVERGED, FailureKind.OUT_OF_MEMORY})

#: ``transform(study, trials) -> trials``: trials are all of the study's, in number order.
Transform = Callable[[Any, list[FrozenTrial]], list[FrozenTrial]]


class StudyView:
    """A proxy of an Optuna study whose trial list goes through ``transform``.

    Everything else (storage, directions, study id, system attributes) is the real study's,
    so samplers that write their own state (CMA-ES, QMC, constant liar) still write it there.
    """

    def __init__(self, study: Any, transform: Transform) -> None:
        self._hptune_study = study
        self._hptune_transform = transform

    def __getattr__(self, name: str) -> Any:
        return getattr(self._hptune_study, name)

    # Optuna's samplers and pruners list trials through this private method (see _optuna).
    def _get_trials(
        self,
        deepcopy: bool = True,
        states: Container[TrialState] | None = None,
        use_cache: bool = False,
    ) -> list[FrozenTrial]:
        trials = self._hptune_study._get_trials(deepcopy=False, states=None, use_cache=use_cache)
        trials = self._hptune_transform(self._hptune_study, trials)
        if states is not None:
            trials = [t for t in trials if t.state in states]
        return copy.deepcopy(trials) if deepcopy else trials

    def get_trials(
        self, deepcopy: bool = True, states: Container[TrialState] | None = None
    ) -> list[FrozenTrial]:
        return self._get_trials(deepcopy=deepcopy, states=states)

    @property
    def trials(self) -> list[FrozenTrial]:
        return self.get_trials()


class ViewSampler(BaseSampler):
    """Wraps ``sampler`` so that every call sees the study through ``transform``.

    Args:
        sampler: The Optuna sampler that does the work.
        transform: ``transform(study, trials) -> trials`` applied to the study's history.
    """

    def __init__(self, sampler: BaseSampler, transform: Transform) -> None:
        self.sampler = sampler
        self._transform = transform

    def _view(self, study: Any) -> StudyView:
        return StudyView(study, self._transform)

    def infer_relative_search_space(
        self, study: Any, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self.sampler.infer_relative_search_space(self._view(study), trial)

    def sample_relative(
        self, study: Any, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self.sampler.sample_relative(self._view(study), trial, search_space)

    def sample_independent(
        self, study: Any, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        view = self._view(study)
        return self.sampler.sample_independent(view, trial, param_name, param_distribution)

    def before_trial(self, study: Any, trial: FrozenTrial) -> None:
        self.sampler.before_trial(self._view(study), trial)

    def after_trial(
        self,
        study: Any,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self.sampler.after_trial(self._view(study), trial, state, values)

    def reseed_rng(self) -> None:
        self.sampler.reseed_rng()


def worst_finite_value(study: Any, trials: list[FrozenTrial]) -> float | None:
    """The worst finite value of the COMPLETE trials (None if there is none)."""
    values = [
        t.value
        for t in trials
        if t.state == TrialState.COMPLETE and t.value is not None and math.isfinite(t.value)
    ]
    if not values:
        return None
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    return min(values) if maximize else max(values)


def penalize_failures(study: Any, trials: list[FrozenTrial]) -> list[FrozenTrial]:
    """Show FAILED trials of a :data:`PENALIZED` kind as COMPLETE with the worst finite value.

    Before any trial completed there is no scale to rank against; the failures then stay
    hidden (as Optuna would hide them) until the first real value arrives.
    """
    marked = [t for t in trials if _records.failure_kind(t) in PENALIZED]
    if not marked:
        return trials
    penalty = worst_finite_value(study, trials)
    if penalty is None:
        return trials
    shown = {t.number: _as_complete(t, penalty) for t in marked}
    return [shown.get(t.number, t) for t in trials]


def _as_complete(trial: FrozenTrial, value: float) -> FrozenTrial:
    return FrozenTrial(
        number=trial.number,
        state=TrialState.COMPLETE,
        value=value,
        datetime_start=trial.datetime_start,
        datetime_complete=trial.datetime_complete,
        params=trial.params,
        distributions=trial.distributions,
        user_attrs=trial.user_attrs,
        system_attrs=trial.system_attrs,
        intermediate_values=trial.intermediate_values,
        trial_id=_optuna.trial_id(trial),
    )


class PenalizingSampler(ViewSampler):
    """Wraps ``sampler`` so that it learns from trials failed with NaN, inf or divergence.

    Args:
        sampler: The Optuna sampler to wrap.

    Example:
        >>> sampler = PenalizingSampler(optuna.samplers.TPESampler(seed=0))
    """

    def __init__(self, sampler: BaseSampler) -> None:
        super().__init__(sampler, penalize_failures)
