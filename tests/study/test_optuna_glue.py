"""The few places hptune reaches into Optuna's private names (``hptune.study._optuna``)
behave as the public path they stand in for."""

from __future__ import annotations

import optuna
from optuna.samplers import RandomSampler
from optuna.trial import TrialState, create_trial

from hptune.space import uniform
from hptune.study import _optuna


class _Seeing(RandomSampler):
    """Records how many finished trials the sampler sees when a trial starts, through the
    cached list Optuna's own samplers read."""

    def __init__(self) -> None:
        super().__init__(seed=0)
        self.seen: list[int] = []

    def infer_relative_search_space(self, study, trial):
        trials = study._get_trials(deepcopy=False, states=(TrialState.COMPLETE,), use_cache=True)
        self.seen.append(len(trials))
        return {}


def test_a_started_trial_s_sampler_sees_trials_finished_since_the_last_tell():
    # As Study.ask does: without dropping Optuna's cached trial list, the second trial's
    # sampler saw the list of the first (0 finished), not the one another driver finished.
    sampler = _Seeing()
    study = optuna.create_study(sampler=sampler)
    _optuna.live_trial(study, _optuna.new_trial(study)).suggest_float("x", 0, 1)
    other = create_trial(
        value=1.0, params={"x": 0.5}, distributions={"x": uniform(0, 1).distribution()}
    )
    study.add_trial(other)  # as another driver would: no tell through this study
    _optuna.live_trial(study, _optuna.new_trial(study)).suggest_float("x", 0, 1)
    assert sampler.seen == [0, 1]
