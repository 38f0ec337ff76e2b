"""Studies end to end: records, failures, NaN, re-opening from real SQLite files."""

from __future__ import annotations

import hashlib
import json
import math
import re

import numpy as np
import optuna
import pytest
import yaml

from hptune.exceptions import ConfigError, HptuneError
from hptune.space import choice, loguniform, uniform
from hptune.study import TrialDiverged, _records, create_study, load_study
from hptune.study._view import penalize_failures

SPACE = {
    "lr": loguniform(1e-4, 1e-1),
    "optimizer": choice(
        {"adam": {"beta1": uniform(0.85, 0.95)}, "sgd": {"momentum": uniform(0.0, 0.9)}}
    ),
}


def quadratic(config, trial):
    for step in range(1, 4):
        trial.report(step, step * config["lr"])
    return -((math.log10(config["lr"]) + 2.0) ** 2)


def sometimes_broken(config, trial):
    if trial.number == 1:
        raise ValueError("bad batch\nsecond line")
    if trial.number == 2:
        return float("nan")
    if trial.number == 3:
        raise TrialDiverged("loss exploded at epoch 3")
    if trial.number == 4:
        return float("inf")
    return config["lr"]


def test_records_survive_reopening_from_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 'h.db'}"
    study = create_study(
        SPACE,
        name="s",
        storage=url,
        strategy="tpe",
        pruner="median",
        seed=7,
        epochs=3,
        direction="maximize",
    )
    study.optimize(quadratic, n_trials=6)
    before = study.trials

    again = load_study("s", url)
    after = again.trials
    assert after == before
    assert [t.state for t in after] == ["COMPLETE"] * 6
    for t in after:
        assert t.seed == int(
            np.random.SeedSequence([7, t.number]).generate_state(1, dtype=np.uint32)[0]
        )
        text = json.dumps(t.config, sort_keys=True, separators=(",", ":"))
        assert t.config_hash == hashlib.sha256(text.encode()).hexdigest()
        assert t.intermediate_values == {
            1: t.config["lr"],
            2: 2 * t.config["lr"],
            3: 3 * t.config["lr"],
        }
        assert t.value == pytest.approx(-((math.log10(t.config["lr"]) + 2.0) ** 2))
        assert t.stage == "tpe"
        assert t.env["optuna"] == optuna.__version__ and t.env["python"]
        assert t.duration is not None and t.duration >= 0
        assert again.space.flatten(t.config) == t.params
    assert again.seed == 7 and again.direction == "maximize"
    assert type(again.optuna_study.pruner).__name__ == "MedianPruner"
    assert again.best_value == max(t.value for t in after)

    # Resuming continues numbering and does not replay the first session's draws.
    again.optimize(quadratic, n_trials=3)
    assert [t.number for t in load_study("s", url).trials] == list(range(9))
    assert {t.config_hash for t in again.trials[6:]}.isdisjoint({t.config_hash for t in before})


def test_plain_optuna_reads_an_hptune_study(tmp_path):
    url = f"sqlite:///{tmp_path / 'h.db'}"
    create_study(
        SPACE, name="plain", storage=url, seed=0, strategy="random", direction="maximize"
    ).optimize(quadratic, n_trials=3)
    ostudy = optuna.load_study(study_name="plain", storage=url)
    assert len(ostudy.trials) == 3
    assert ostudy.user_attrs["hptune.study_seed"] == 0
    t = ostudy.trials[0]
    assert t.user_attrs["hptune.trial"]["config"]["lr"] == t.params["lr"]  # one record


def test_failures_fail_only_their_trial_with_reasons():
    study = create_study(SPACE, storage=None, strategy="random", seed=0, direction="maximize")
    study.optimize(sometimes_broken, n_trials=6)
    states = [t.state for t in study.trials]
    assert states == ["COMPLETE", "FAILED", "FAILED", "FAILED", "FAILED", "COMPLETE"]
    t = study.trials
    assert t[1].failure_reason == "ValueError: bad batch"
    assert "Traceback" in study.optuna_study.trials[1].user_attrs["hptune.trial"]["traceback"]
    assert t[2].failure_reason == "objective returned nan"
    assert t[3].failure_reason == "TrialDiverged: loss exploded at epoch 3"
    assert t[4].failure_reason == "objective returned inf"
    assert "objective returned nan" in repr(t[2])
    kinds = [x.failure_kind for x in t]
    assert kinds == [None, "error", "diverged", "diverged", "diverged", None]
    stored = [
        x.user_attrs.get("hptune.trial")["failure_kind"] if x.state.name == "FAIL" else None
        for x in study.optuna_study.trials
    ]
    assert stored == [None, "error", "diverged", "diverged", "diverged", None]
    assert all(x.value is None for x in t[1:5])
    assert study.best_value == max(t[0].value, t[5].value)


def test_objective_attrs_are_stored():
    def objective(config, trial):
        trial.set_attr("test_accuracy", 0.5)
        return 1.0

    study = create_study(SPACE, storage=None, strategy="random", seed=0, direction="maximize")
    study.optimize(objective, n_trials=1)
    assert study.trials[0].attrs == {"test_accuracy": 0.5}


def test_pruned_trials_are_recorded():
    def objective(config, trial):
        for step in range(1, 10):
            trial.report(step, 0.0 if trial.number else 1.0)
        return 0.0

    study = create_study(
        SPACE,
        storage=None,
        strategy="random",
        pruner="asha",
        seed=0,
        epochs=9,
        direction="maximize",
    )
    study.optimize(objective, n_trials=4)
    assert study.trials[0].state == "COMPLETE"
    assert "PRUNED" in [t.state for t in study.trials[1:]]


def _hyperband_run(name, seed, storage=None):
    """A seeded TPE + Hyperband search whose curves depend on the config only; returns
    each trial's (state, steps reported) in order."""

    def objective(config, trial):
        for step in range(1, 19):
            trial.report(step, config["lr"] * step)
        return config["lr"] * 18

    study = create_study(
        SPACE,
        name=name,
        storage=storage,
        strategy="tpe",
        pruner="hyperband",
        seed=seed,
        epochs=18,
        direction="maximize",
    )
    study.optimize(objective, n_trials=24)
    return [(t.state, len(t.intermediate_values)) for t in study.trials]


def test_hyperband_pruning_follows_the_seed_not_the_study_name(tmp_path):
    # Optuna picks a trial's Hyperband bracket by hashing the study name; hptune by the
    # seed, so a seeded search prunes the same under any name (unnamed studies get a
    # clock-based name) and on any storage.
    first = _hyperband_run("a", 0)
    assert {state for state, _ in first} == {"COMPLETE", "PRUNED"}
    assert _hyperband_run(None, 0) == first
    assert _hyperband_run("b", 0, f"sqlite:///{tmp_path / 'h.db'}") == first
    assert _hyperband_run("a", 1) != first


def test_a_metric_name_labels_the_value_for_optuna_and_its_dashboard(tmp_path):
    url = f"sqlite:///{tmp_path / 'h.db'}"
    study = create_study(SPACE, name="m", storage=url, direction="maximize", metric="val_acc")
    assert study.metric_name == "val_acc"
    assert optuna.load_study(study_name="m", storage=url).metric_names == ["val_acc"]
    # Re-opened without a metric, the study keeps its name; with another, it takes it.
    assert create_study(SPACE, name="m", storage=url, load_if_exists=True).metric_name == "val_acc"
    create_study(SPACE, name="m", storage=url, load_if_exists=True, metric="top1")
    assert load_study("m", url).metric_name == "top1"
    unnamed = create_study(SPACE, name="u", storage=url, direction="maximize")
    assert unnamed.metric_name is None
    assert optuna.load_study(study_name="u", storage=url).metric_names is None
    with pytest.raises(
        ConfigError,
        match=re.escape(
            "create_study: metric must be a one-line name of 1 to 100 characters or None, "
            "got ''; e.g. 'val_loss'."
        ),
    ):
        create_study(SPACE, storage=None, direction="maximize", metric="")


def test_reopening_with_another_space_fails(tmp_path):
    url = f"sqlite:///{tmp_path / 'h.db'}"
    create_study(SPACE, name="s", storage=url, seed=0, direction="maximize")
    other = {**SPACE, "lr": loguniform(1e-5, 1e-1)}
    with pytest.raises(HptuneError, match="study 's' was created with a different space") as info:
        create_study(other, name="s", storage=url, load_if_exists=True, direction="maximize")
    assert "space.lr 'loguniform(0.0001, 0.1)' -> 'loguniform(1e-05, 0.1)'. Use a new" in str(
        info.value
    )
    reopened = create_study(SPACE, name="s", storage=url, load_if_exists=True, direction="maximize")
    assert reopened.seed == 0
    with pytest.raises(HptuneError, match=re.escape("created with seed=0, given seed=1")):
        create_study(
            SPACE, name="s", storage=url, load_if_exists=True, seed=1, direction="maximize"
        )
    with pytest.raises(HptuneError, match=re.escape("created with direction='maximize'")):
        create_study(SPACE, name="s", storage=url, load_if_exists=True, direction="minimize")
    with pytest.raises(HptuneError, match="a study named 's' already exists"):
        create_study(SPACE, name="s", storage=url, direction="maximize")
    with pytest.raises(HptuneError, match=re.escape("no study named 'nope'")):
        load_study("nope", url)


def test_seed_is_drawn_and_recorded_when_none(tmp_path):
    url = f"sqlite:///{tmp_path / 'h.db'}"
    study = create_study(SPACE, name="s", storage=url, direction="maximize")
    study.optimize(quadratic, n_trials=2)
    stored = load_study("s", url).seed
    assert stored == study.seed and 0 <= stored < 2**32
    assert [t.seed for t in study.trials] == [_records.derive_trial_seed(stored, n) for n in (0, 1)]


def test_bad_arguments_are_config_errors():
    with pytest.raises(
        ConfigError,
        match="create_study: direction must be one of 'minimize', 'maximize' or None, got 'max'",
    ):
        create_study(SPACE, storage=None, direction="max")
    with pytest.raises(ConfigError, match="unknown strategy 'tpee'; valid: grid, random, sobol"):
        create_study(SPACE, storage=None, strategy="tpee", direction="maximize")
    study = create_study(SPACE, storage=None, direction="maximize")
    with pytest.raises(
        ConfigError, match=re.escape("optimize: n_trials must be an int >= 1 or None, got 0.")
    ):
        study.optimize(quadratic, n_trials=0)
    with pytest.raises(ConfigError, match="give n_workers or executor, not both"):
        from hptune.execution import InlineExecutor

        study.optimize(quadratic, n_trials=1, n_workers=2, executor=InlineExecutor())
    with pytest.raises(HptuneError, match="has no completed trial yet"):
        study.best_config  # noqa: B018


def test_export_best_and_rows(tmp_path):
    study = create_study(
        SPACE, name="exp", storage=None, strategy="random", seed=3, direction="maximize"
    )
    study.optimize(quadratic, n_trials=4)
    doc = yaml.safe_load(study.export_best(tmp_path / "best.yaml").read_text())
    best = study.best_trial
    assert doc == {
        "study": "exp",
        "direction": "maximize",
        "trial": best.number,
        "value": best.value,
        "seed": best.seed,
        "config_hash": best.config_hash,
        "config": best.config,
    }
    rows = study.to_rows()
    assert [r["number"] for r in rows] == [0, 1, 2, 3]
    assert rows[0]["params.lr"] == study.trials[0].config["lr"]


def test_to_dataframe_names_pandas_when_missing():
    study = create_study(SPACE, storage=None, strategy="random", seed=3, direction="maximize")
    try:
        import pandas  # noqa: F401
    except ImportError:
        with pytest.raises(HptuneError, match=re.escape("pip install pandas")):
            study.to_dataframe()
    else:
        study.optimize(quadratic, n_trials=2)
        assert list(study.to_dataframe()["number"]) == [0, 1]


def test_ctrl_c_records_the_running_trial_and_propagates():
    def objective(config, trial):
        if trial.number == 2:
            raise KeyboardInterrupt
        return 1.0

    study = create_study(SPACE, storage=None, strategy="random", seed=0, direction="maximize")
    with pytest.raises(KeyboardInterrupt):
        study.optimize(objective, n_trials=5)
    assert [t.state for t in study.trials] == ["COMPLETE", "COMPLETE", "FAILED"]
    assert study.trials[2].failure_reason == "interrupted"


class _Recorder:
    def __init__(self):
        self.events = []

    def trial_started(self, number, config):
        self.events.append(("start", number, config["x"]))

    def trial_finished(self, record):
        self.events.append(("finish", record.number, record.state))


def test_listener_sees_every_start_and_finish_with_final_state():
    from hptune.space import uniform
    from hptune.study import create_study

    def objective(config, trial):
        if trial.number == 1:
            raise ValueError("boom")
        return config["x"]

    study = create_study(
        {"x": uniform(0, 1)}, storage=None, strategy="random", seed=0, direction="maximize"
    )
    recorder = _Recorder()
    study.optimize(objective, n_trials=3, listener=recorder)
    starts = [e for e in recorder.events if e[0] == "start"]
    finishes = [e[1:] for e in recorder.events if e[0] == "finish"]
    assert [s[1] for s in starts] == [0, 1, 2]
    assert finishes == [(0, "COMPLETE"), (1, "FAILED"), (2, "COMPLETE")]


class _Exploded(TrialDiverged):
    """A user's own divergence error, raised without a message."""


def test_any_trial_diverged_is_penalized_message_or_not():
    def objective(config, trial):
        if trial.number == 0:
            raise _Exploded()
        if trial.number == 1:
            raise TrialDiverged()
        return 1.0

    study = create_study(SPACE, storage=None, strategy="random", seed=0, direction="maximize")
    study.optimize(objective, n_trials=3)
    assert [t.failure_reason for t in study.trials[:2]] == ["_Exploded", "TrialDiverged"]
    assert [t.failure_kind for t in study.trials] == ["diverged", "diverged", None]
    # The sampler sees both as the worst complete value, the third trial's 1.0.
    shown = penalize_failures(study.optuna_study, study.optuna_study.trials)
    assert [(t.state.name, t.value) for t in shown] == [("COMPLETE", 1.0)] * 3


def test_a_record_is_a_copy_that_cannot_change_the_study(tmp_path):
    study = create_study(
        SPACE,
        storage=f"sqlite:///{tmp_path / 'c.db'}",
        strategy="random",
        seed=0,
        direction="maximize",
    )
    study.optimize(lambda c, t: 1.0, n_trials=1)
    record = study.trials[0]
    before = dict(record.config)
    record.config["lr"] = -1.0
    record.attrs["x"] = 1
    assert study.best_config == before and study.trials[0].attrs == {}


def test_studies_loaded_at_the_same_moment_draw_different_configs(tmp_path):
    # Two drivers (machines) open one study while it holds no trial: equally seeded, they
    # would propose the same configs; the second re-seeds by its first trial's number.
    url = f"sqlite:///{tmp_path / 'm.db'}"
    create_study(SPACE, name="m", storage=url, strategy="random", seed=0, direction="maximize")
    first, second = load_study("m", url), load_study("m", url)
    first.optimize(lambda c, t: 1.0, n_trials=3)
    second.optimize(lambda c, t: 1.0, n_trials=3)
    configs = [json.dumps(t.config, sort_keys=True) for t in load_study("m", url).trials]
    assert len(set(configs)) == 6
    # Alone on its study, a driver keeps the sequence its seed gives (resume included).
    alone = create_study(
        SPACE, name="a", storage=url, strategy="random", seed=0, direction="maximize"
    )
    alone.optimize(lambda c, t: 1.0, n_trials=3)
    assert [t.config for t in alone.trials] == [t.config for t in first.trials[:3]]


def test_trial_timeout_stops_a_trial_in_a_worker_process_and_inline_refuses_it():
    study = create_study(SPACE, storage=None, strategy="random", seed=0, direction="maximize")
    study.optimize("tests.study._execution_jobs:slow", n_trials=1, trial_timeout=0.5)
    (trial,) = study.trials
    assert trial.state == "FAILED" and trial.failure_reason.startswith("timed out after 0.5 s")
    with pytest.raises(ConfigError, match=re.escape("trial_timeout needs trials in worker")):
        study.optimize(lambda c, t: 1.0, n_trials=1, trial_timeout=1.0, executor="inline")


def test_load_study_never_creates_a_database(tmp_path):
    url = f"sqlite:///{tmp_path / 'typo.db'}"
    with pytest.raises(HptuneError, match=re.escape("no database file at")):
        load_study("s", url)
    assert not (tmp_path / "typo.db").exists()


def test_a_new_study_needs_a_direction_and_a_reopened_one_keeps_its_own(tmp_path):
    message = "create_study: direction must be given for a new study: 'maximize' when"
    with pytest.raises(ConfigError, match=re.escape(message)):
        create_study(SPACE, storage=None)
    url = f"sqlite:///{tmp_path / 'd.db'}"
    create_study(SPACE, name="d", storage=url, direction="minimize", seed=0)
    again = create_study(SPACE, name="d", storage=url, seed=0, load_if_exists=True)
    assert again.direction == "minimize"


@pytest.mark.parametrize(
    ("objective", "message"),
    [
        (5, "optimize: objective must be a callable or a 'package.module:function' string, got 5."),
        ("nosuchmod", "optimize: objective must be a callable or a 'package.module:function'"),
        ("nosuchmod:f", "cannot import module 'nosuchmod' of objective 'nosuchmod:f'"),
    ],
)
def test_an_objective_that_names_no_function_is_refused_before_any_trial(objective, message):
    """It used to fail every trial of the budget, one by one."""
    study = create_study({"x": uniform(0, 1)}, storage=None, seed=0, direction="maximize")
    with pytest.raises(ConfigError, match=re.escape(message)):
        study.optimize(objective, n_trials=2)
    assert study.trials == []


@pytest.mark.parametrize(
    ("kwargs", "bad"),
    [({"strategy_options": [1]}, "strategy_options"), ({"pruner_options": "x"}, "pruner_options")],
)
def test_options_that_are_not_a_mapping_are_refused_in_one_line(kwargs, bad):
    """They used to surface as a bare TypeError or ValueError from dict()."""
    with pytest.raises(ConfigError, match=f"create_study: {bad} must be a mapping of option"):
        create_study({"x": uniform(0, 1)}, storage=None, direction="maximize", **kwargs)


def test_a_run_with_its_budget_spent_queues_no_retries_it_cannot_run(tmp_path, monkeypatch):
    """A resume of a finished study queued retries of its dead-worker trials and ran none
    of them: they waited in the study for ever ('waiting 1' in status)."""
    monkeypatch.setenv("HPTUNE_TEST_MARKER", str(tmp_path / "died"))
    url = f"sqlite:///{tmp_path / 'r.db'}"
    study = create_study({"x": uniform(0, 1)}, name="r", storage=url, seed=0,
                         direction="maximize")  # fmt: skip
    objective = "tests.study._execution_jobs:dies_once"
    study.optimize(objective, n_workers=2, max_total_trials=3)
    assert [t.failure_kind for t in study.trials].count("worker_died") == 1  # the premise
    assert study.optimize(objective, n_workers=2, max_total_trials=3, max_retries=1).value == (
        "budget_spent"
    )
    assert [t.state for t in load_study("r", url).trials].count("WAITING") == 0


def test_a_ctrl_c_while_a_study_is_made_waits_until_it_is_whole(tmp_path, monkeypatch):
    """Interrupted between its creation and its last attribute, a study was left half
    made: every later driver waited a minute for it, then refused it."""
    import os
    import signal

    real = optuna.Study.set_user_attr

    def set_then_ctrl_c(self, key, value):
        real(self, key, value)
        if key == "hptune.space_fingerprint":  # the first of hptune's attributes
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(optuna.Study, "set_user_attr", set_then_ctrl_c)
    url = f"sqlite:///{tmp_path / 'w.db'}"
    with pytest.raises(KeyboardInterrupt):
        create_study({"x": uniform(0, 1)}, name="w", storage=url, seed=0,
                     direction="maximize", user_attrs={"mine": 1})  # fmt: skip
    monkeypatch.undo()
    attrs = optuna.load_study(study_name="w", storage=url).user_attrs
    assert "hptune.space" in attrs and attrs["mine"] == 1
    assert load_study("w", url).seed == 0
