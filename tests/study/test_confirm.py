"""Confirmation: the search's best configs re-trained with fresh seeds, chosen by the mean
(``Study.optimize(confirm=...)``, ``study/_confirm.py``). Real SQLite studies; the
objectives are cheap functions of the config, the seed and (for a lucky reading) the trial
number, so which config a confirmation must choose is known."""

from __future__ import annotations

import statistics

import pytest

from hptune.exceptions import ConfigError
from hptune.space import choice
from hptune.study import Confirm, create_study, load_study
from hptune.study._confirm import pick, pooled_std, summarize
from tests.study._execution_jobs import CONFIRM_BUDGET as BUDGET
from tests.study._execution_jobs import CONFIRM_SEARCH as SEARCH
from tests.study._execution_jobs import lucky

CONFIRM = Confirm(top=3, seeds=2)

SPACE = {"x": choice("a", "b", "c", "d", "e")}


def _study(tmp_path, name="confirm", **kwargs):
    kwargs.setdefault("pruner", "none")  # the tests that prune say so
    return create_study(
        SPACE,
        name=name,
        storage=f"sqlite:///{tmp_path / 'study.db'}",
        strategy="random",
        direction="maximize",
        seed=3,
        load_if_exists=True,
        **kwargs,
    )


def _searched(study):
    return {r.config["x"] for r in study.trials if r.repeat_of is None and r.value is not None}


def test_the_top_configs_are_retrained_with_fresh_seeds_and_the_best_mean_wins(tmp_path):
    study = _study(tmp_path)
    study.optimize(lucky, max_total_trials=BUDGET, confirm=CONFIRM)
    trials = study.trials
    assert len(trials) == BUDGET
    assert {"b", "c", "d"} <= _searched(study)  # the seed searched them: the test's premise
    search, repeats = trials[:SEARCH], trials[SEARCH:]
    assert all(r.repeat_of is None for r in search)
    assert all(r.repeat_of is not None and r.stage == "confirm" for r in repeats)
    # The three best distinct configs of the search, two fresh seeds each.
    by_config = {}
    for r in repeats:
        original = trials[r.repeat_of]
        assert r.config == original.config and r.seed != original.seed
        by_config.setdefault(r.config["x"], []).append(r)
    assert sorted(by_config) == ["b", "c", "d"]
    assert all(len(rs) == 2 for rs in by_config.values())
    assert len({r.seed for r in trials}) == BUDGET
    # The lucky reading picked d first; its fresh seeds show it is the worst of the three.
    assert max(search, key=lambda r: r.value).config["x"] == "d"
    best = study.best_trial
    assert best.config["x"] == "c" and best.repeat_of is None and best.number < SEARCH
    assert study.best_value == pytest.approx(statistics.fmean(r.value for r in by_config["c"]))
    confirmation = study.confirmation
    assert [study.trials[c.trial].config["x"] for c in confirmation.configs] == ["c", "b", "d"]
    assert confirmation.configs[-1].search_value > 0.9
    assert 0 < confirmation.noise < 0.01 and confirmation.n_readings == 6
    assert study.last_stop["reason"] == "budget"


def test_confirmation_trials_are_never_pruned(tmp_path):
    study = _study(
        tmp_path,
        pruner="median",
        pruner_options={"n_startup_trials": 0, "n_warmup_steps": 0},
    )
    study.optimize(lucky, max_total_trials=BUDGET, confirm=CONFIRM)
    trials = study.trials
    assert any(r.state == "PRUNED" for r in trials[:SEARCH])  # the pruner was at work
    repeats = [r for r in trials if r.repeat_of is not None]
    # Only COMPLETE readings are picked (a pruned trial's is partial): here fewer distinct
    # configs than `top` completed, and the confirmation takes fewer trials.
    completed = {r.config["x"] for r in trials[:SEARCH] if r.state == "COMPLETE"}
    assert {r.config["x"] for r in repeats} == completed and "d" in completed
    assert len(repeats) == CONFIRM.seeds * min(CONFIRM.top, len(completed))
    # d's fresh readings (0.40) lie below the median of every step: only the exemption
    # let them run in full.
    assert all(r.state == "COMPLETE" and len(r.intermediate_values) == 5 for r in repeats)


@pytest.mark.parametrize("retries", [0, 1])
def test_an_interrupted_confirmation_resumes_with_the_same_configs(tmp_path, retries):
    calls = {"n": 0}

    def interrupted_in_confirmation(config, trial):
        calls["n"] += 1
        if trial.number == SEARCH + 2:
            raise KeyboardInterrupt
        return lucky(config, trial)

    study = _study(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        study.optimize(interrupted_in_confirmation, max_total_trials=BUDGET, confirm=CONFIRM)
    picks = study.optuna_study.user_attrs["hptune.confirm"]["trials"]
    study = _study(tmp_path)  # a fresh driver, as `hptune resume` opens it
    study.optimize(lucky, max_total_trials=BUDGET, confirm=CONFIRM, max_retries=retries)
    assert study.optuna_study.user_attrs["hptune.confirm"]["trials"] == picks
    # With retries the interrupted slot runs as a retry (same seed), else as a fresh copy.
    again = [t for t in study.optuna_study.trials if t.number > SEARCH + 2]
    assert any("hptune.retry_of" in t.user_attrs for t in again) == bool(retries)
    assert not any(t.state.name == "FAIL" for t in again)  # no duplicate of the slot
    counted = [r for r in study.trials if r.state == "COMPLETE"]
    assert len(counted) == BUDGET  # the interrupted slot ran again; nothing more
    slots = [
        tuple(t.user_attrs["hptune.repeat_of"])
        for t in study.optuna_study.trials
        if t.state.name == "COMPLETE" and "hptune.repeat_of" in t.user_attrs
    ]
    assert sorted(slots) == sorted((n, i) for n in picks for i in (1, 2))
    # Run again: the budget is spent, and nothing starts.
    assert study.optimize(lucky, max_total_trials=BUDGET, confirm=CONFIRM).value == ("budget_spent")
    assert len(study.trials) == len(load_study("confirm", study.optuna_study._storage).trials)


def test_deterministic_batches_confirm_the_same_configs_as_one_by_one(tmp_path):
    one = _study(tmp_path, name="one")
    one.optimize(lucky, max_total_trials=BUDGET, confirm=CONFIRM)
    batched = _study(tmp_path, name="batched")
    batched.optimize(
        lucky, max_total_trials=BUDGET, confirm=CONFIRM, deterministic=True, batch_size=4
    )
    assert [r.config for r in batched.trials] == [r.config for r in one.trials]
    assert batched.best_trial.number == one.best_trial.number


def test_two_workers_confirm_after_their_search_trials_finished(tmp_path):
    study = _study(tmp_path)
    study.optimize(
        "tests.study._execution_jobs:lucky",
        n_workers=2,
        max_total_trials=BUDGET,
        confirm=CONFIRM,
    )
    trials = study.trials
    first_repeat = min(r.number for r in trials if r.repeat_of is not None)
    search = [r for r in trials if r.repeat_of is None]
    assert len(search) == SEARCH and len(trials) == BUDGET
    assert all(r.number < first_repeat for r in search)  # every search trial was in the pick
    assert study.best_trial.config["x"] == "c"


def test_a_retried_confirmation_trial_never_runs_past_the_budget(tmp_path, monkeypatch):
    """A fresh-seed trial whose worker died counts, and its retry would be one trial more
    than the budget: it waits (for a run with room) instead of running."""
    monkeypatch.setenv("HPTUNE_TEST_MARKER", str(tmp_path / "died"))
    study = _study(tmp_path)
    study.optimize(
        "tests.study._execution_jobs:dies_once_when_confirming",
        n_workers=2,
        max_total_trials=BUDGET,
        confirm=CONFIRM,
        max_retries=1,
    )
    assert (tmp_path / "died").exists()  # the test's premise: a confirmation worker died
    assert study.n_counted_trials == BUDGET
    assert study.last_stop["reason"] == "budget"
    assert sum(r.state == "COMPLETE" for r in study.trials if r.repeat_of is not None) == 5


def test_a_grid_that_runs_out_is_confirmed_too(tmp_path):
    study = create_study(
        SPACE,
        name="grid",
        storage=f"sqlite:///{tmp_path / 'g.db'}",
        strategy="grid",
        pruner="none",
        direction="maximize",
        seed=0,
    )
    study.optimize(lucky, max_total_trials=BUDGET, confirm=CONFIRM)
    trials = study.trials
    assert len([r for r in trials if r.repeat_of is None]) == 5  # the grid's five points
    repeats = [r for r in trials if r.repeat_of is not None]
    assert len(repeats) == CONFIRM.n_trials  # after the grid ran out, not at the budget
    assert sorted(r.config["x"] for r in repeats) == ["b", "b", "c", "c", "d", "d"]
    # 11 of 20 trials ran: not "the budget was reached", as it said before.
    assert study.last_stop["reason"] == "exhausted" and study.n_counted_trials == 11


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "confirm takes its 6 trials (top x seeds) from max_total_trials"),
        ({"max_total_trials": 6}, "must be larger, got 6"),
        ({"max_total_trials": 20, "confirm": (3, 2)}, "confirm must be a hptune.study.Confirm"),
    ],
)
def test_a_confirmation_without_room_in_the_budget_is_refused(tmp_path, kwargs, message):
    study = _study(tmp_path)
    kwargs.setdefault("confirm", CONFIRM)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        study.optimize(lucky, **kwargs)
    assert study.trials == []


@pytest.mark.parametrize("field", ["top", "seeds"])
@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_confirm_takes_positive_integers(field, bad):
    with pytest.raises(ConfigError, match=f"confirm: {field} must be"):
        Confirm(**{field: bad})


def test_pick_keeps_one_trial_per_config_best_reading_first(tmp_path):
    study = _study(tmp_path)
    study.optimize(lucky, n_trials=12)
    trials = study.optuna_study.get_trials()
    picked = pick(trials, "maximize", 2)
    configs = [trials[n].params["x"] for n in picked]
    assert len(set(configs)) == 2
    values = [trials[n].value for n in picked]
    assert values == sorted(values, reverse=True)
    assert values[0] == max(t.value for t in trials)
    minimized = pick(trials, "minimize", 1)
    assert trials[minimized[0]].value == min(t.value for t in trials)


def test_a_config_whose_fresh_seed_failed_ranks_after_sound_ones(tmp_path):
    def fails_on_d_repeats(config, trial):
        if config["x"] == "d" and trial.number >= SEARCH:
            raise RuntimeError("out of luck")
        return lucky(config, trial)

    study = _study(tmp_path)
    study.optimize(fails_on_d_repeats, max_total_trials=BUDGET, confirm=Confirm(3, 1))
    confirmation = summarize(study.trials, "maximize")
    last = confirmation.configs[-1]
    assert study.trials[last.trial].config["x"] == "d" and last.failed == 1
    assert last.values == {} and last.mean is None
    assert confirmation.noise is None  # one fresh seed each: no spread to pool


def test_pooled_std_weighs_groups_by_their_degrees_of_freedom():
    assert pooled_std([[1.0, 3.0], [5.0, 5.0], [7.0]]) == pytest.approx(1.0)
    assert pooled_std([[1.0, 2.0, 3.0], [4.0, 6.0]]) == pytest.approx(((2 + 2) / 3) ** 0.5)
    assert pooled_std([[1.0], [2.0]]) is None


def test_a_study_without_confirmation_keeps_the_single_best_reading(tmp_path):
    study = _study(tmp_path)
    study.optimize(lucky, n_trials=10)
    assert study.confirmation is None
    assert study.best_value == max(r.value for r in study.trials)


def test_the_exported_best_is_the_confirmed_config_with_its_mean(tmp_path):
    import yaml

    study = _study(tmp_path)
    study.optimize(lucky, max_total_trials=BUDGET, confirm=CONFIRM)
    doc = yaml.safe_load(study.export_best(tmp_path / "best.yaml").read_text())
    chosen = study.confirmation.best
    assert doc["trial"] == chosen.trial and doc["config"] == {"x": "c"}
    assert doc["value"] == pytest.approx(chosen.mean) and doc["seeds"] == 2
    assert doc["search_value"] == chosen.search_value and doc["sd"] == chosen.std
