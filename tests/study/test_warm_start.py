"""Warm starts: a new study begins with the old study's trials that fit its space, its
sampler learns from them, and they are copies, not trials of its own (real SQLite files)."""

from __future__ import annotations

import logging
import math
import re

import optuna
import pytest

from hptune.exceptions import ConfigError, HptuneError
from hptune.execution import FailureKind
from hptune.space import choice, loguniform
from hptune.study import TrialDiverged, create_study, load_study

OLD_SPACE = {"lr": loguniform(1e-3, 1e-1), "optimizer": choice("adam", "sgd"), "width": 64}
#: The old space with the range of lr widened and a choice added: every old config fits.
WIDER = {"lr": loguniform(1e-4, 1e-1), "optimizer": choice("adam", "sgd", "adamw"), "width": 64}


def objective(config, trial):
    """Best at lr = 10**-2.5; diverges above 0.05; trial 1 fails with an error."""
    if trial.number == 1:
        raise ValueError("a bug in the objective")
    if config["lr"] > 0.05:
        raise TrialDiverged("loss exploded")
    value = -abs(math.log10(config["lr"]) + 2.5)
    for step in (1, 2, 3):
        trial.report(step, value * step / 3)
    trial.set_attr("test_accuracy", 1.0 + value)
    return value


@pytest.fixture
def old(tmp_path):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    study = create_study(
        OLD_SPACE, name="old", storage=url, direction="maximize", strategy="random",
        pruner="median", epochs=3, seed=0,
    )  # fmt: skip
    study.optimize(objective, n_trials=20)
    return study, url


def test_the_old_trials_that_are_evidence_are_copied_with_their_records(old):
    old_study, url = old
    by_kind = {(t.state, t.failure_kind) for t in old_study.trials}
    assert {("COMPLETE", None), ("PRUNED", None), ("FAILED", FailureKind.DIVERGED)} <= by_kind
    assert ("FAILED", FailureKind.ERROR) in by_kind  # trial 1: says nothing about its config
    new = create_study(WIDER, name="new", storage=url, direction="maximize", warm_start_from="old")
    evidence = [t for t in old_study.trials if t.failure_kind is not FailureKind.ERROR]
    assert len(new.trials) == len(evidence) == 19
    assert new.warm_start == {"study": "old", "storage": url, "trials": 19}
    frozen = optuna.load_study(study_name="new", storage=url).trials
    for copy, original, raw in zip(new.trials, evidence, frozen):
        assert copy.stage == "warm-start"
        assert raw.user_attrs["hptune.warm_start_from"] == {
            "study": "old",
            "trial": original.number,
        }
        assert (copy.state, copy.failure_kind) == (original.state, original.failure_kind)
        assert (copy.config, copy.seed, copy.config_hash) == (
            original.config, original.seed, original.config_hash,
        )  # fmt: skip
        assert copy.intermediate_values == original.intermediate_values
        assert copy.attrs == original.attrs and copy.duration == original.duration
        if copy.state == "COMPLETE":
            assert copy.value == original.value
        # Stored with the new space's distributions: Optuna sees the new study's space.
        assert raw.distributions == new.space.distributions(copy.config)


def test_copies_use_no_budget_and_are_never_run_again(old):
    _, url = old
    new = create_study(WIDER, name="new", storage=url, direction="maximize", warm_start_from="old")
    assert new.n_counted_trials == 0
    new.optimize(objective, max_total_trials=3, max_retries=2)
    own = [t for t in new.trials if t.stage != "warm-start"]
    assert [t.number for t in own] == [19, 20, 21] and new.n_counted_trials == 3
    assert new.last_stop["reason"] == "budget" and new.last_stop["trials"] == 3
    # Re-opening never copies again, whatever warm_start_from says.
    again = create_study(WIDER, name="new", storage=url, load_if_exists=True, warm_start_from="old")
    assert len(again.trials) == 22


def test_the_sampler_learns_from_the_copies_at_once(old):
    old_study, url = old
    best_lr = math.log10(old_study.best_config["lr"])

    def first_proposals(name, **warm):
        study = create_study(
            WIDER, name=name, storage=url, direction="maximize", strategy="tpe", seed=0, **warm
        )
        study.optimize(objective, n_trials=10)
        return [math.log10(t.config["lr"]) for t in study.trials if t.stage != "warm-start"]

    cold, warm = first_proposals("cold"), first_proposals("warm", warm_start_from="old")
    # Cold, TPE's first 10 trials are random over 3 decades of lr; warm, it models the 19
    # copies at once and proposes near the old best (seeds 0-5 all gave 4-5 vs 1-2).
    near = [sum(abs(lr - best_lr) < 0.25 for lr in lrs) for lrs in (cold, warm)]
    assert near[0] <= 2 and near[1] >= 4, (cold, warm, best_lr)


def test_configs_outside_the_new_space_stay_behind(old, caplog):
    old_study, url = old
    narrow = {**OLD_SPACE, "lr": loguniform(1e-2, 1e-1)}
    new = create_study(narrow, name="narrow", storage=url, direction="maximize",
                       warm_start_from=("old", url))  # fmt: skip
    inside = [t for t in old_study.trials if t.failure_kind is not FailureKind.ERROR
              and t.config["lr"] >= 1e-2]  # fmt: skip
    assert 0 < len(new.trials) == len(inside) < 19
    with caplog.at_level(logging.WARNING, logger="hptune.study"):
        other = create_study({**OLD_SPACE, "width": 128}, name="w128", storage=url,
                             direction="maximize", warm_start_from=old_study)  # fmt: skip
    assert other.trials == [] and other.warm_start["trials"] == 0
    assert "none of the 19 finished trials of study 'old' fits the new space" in caplog.text


def test_a_warm_start_is_refused_when_it_could_only_mislead(old):
    _, url = old
    with pytest.raises(ConfigError, match=re.escape(
        "warm_start_from: study 'old' was run to maximize its value and this one to minimize "
        "it, so its results would teach the sampler the wrong way"
    )):  # fmt: skip
        create_study(WIDER, name="min", storage=url, direction="minimize", warm_start_from="old")
    with pytest.raises(ConfigError, match="warm_start_from names the study 'x' itself"):
        create_study(WIDER, name="x", storage=url, warm_start_from="x", direction="maximize")
    with pytest.raises(ConfigError, match=re.escape(
        "create_study: warm_start_from must be a Study, a study name or a (name, storage) pair, "
        "got 3"
    )):  # fmt: skip
        create_study(WIDER, storage=None, direction="maximize", warm_start_from=3)
    with pytest.raises(HptuneError, match=re.escape("no study named 'nope'")):
        create_study(WIDER, name="x", storage=url, direction="maximize", warm_start_from="nope")
    # A refusal leaves no half-made study behind.
    assert optuna.get_all_study_names(url) == ["old"]


def test_a_changed_space_is_refused_with_a_short_diff_naming_the_warm_start(old):
    _, url = old
    with pytest.raises(HptuneError) as info:
        create_study(WIDER, name="old", storage=url, load_if_exists=True)
    assert str(info.value) == (
        "study 'old' was created with a different space: space.lr 'loguniform(0.001, 0.1)' "
        "-> 'loguniform(0.0001, 0.1)', space.optimizer \"choice('adam', 'sgd')\" -> "
        "\"choice('adam', 'sgd', 'adamw')\". Use a new study name for a new space "
        "(warm_start_from='old' starts it from this study's results), or pass the same "
        "space (hptune.load_study reads it)."
    )
    assert len(load_study("old", url).trials) == 20
