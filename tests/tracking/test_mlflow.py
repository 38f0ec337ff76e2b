"""MLflow tracking, read back from a real SQLite tracking store: a parent run per study found
again on the next run, a nested run per trial with its config, seed, state, curve and
value, from worker processes too."""

from __future__ import annotations

import pytest

from tests.integrations._extras import import_or_skip
from tests.tracking.conftest import OBJECTIVE

mlflow = import_or_skip("mlflow")

from mlflow.tracking import MlflowClient  # noqa: E402

from hptune.exceptions import HptuneError  # noqa: E402
from hptune.tracking import MlflowTracker  # noqa: E402


@pytest.fixture
def uri(tmp_path):
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def runs(uri: str, experiment: str) -> tuple[object, list]:
    client = MlflowClient(tracking_uri=uri)
    found = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    (parent,) = [r for r in found if r.data.tags.get("hptune.role") == "study"]
    children = [r for r in found if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    return parent, sorted(children, key=lambda r: int(r.data.tags["hptune.trial"]))


@pytest.mark.slow
def test_every_trial_of_two_workers_is_a_nested_run_with_its_record(make_study, uri):
    study = make_study(pruner="median", pruner_options={"n_startup_trials": 2})
    study.optimize(OBJECTIVE, n_trials=8, n_workers=2, trackers=[MlflowTracker(uri, "exp")])
    client = MlflowClient(tracking_uri=uri)
    parent, children = runs(uri, "exp")
    assert parent.info.run_name == "tracked" and parent.info.status == "FINISHED"
    assert parent.data.params == {
        "direction": "maximize", "metric": "score", "seed": "0", "strategy": "random",
        "pruner": "MedianPruner",
    }  # fmt: skip
    records = study.trials
    assert [int(r.data.tags["hptune.trial"]) for r in children] == [t.number for t in records]
    states = set()
    for run, record in zip(children, records):
        states.add(record.state)
        tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
        assert run.info.run_name == f"trial-{record.number}"
        assert tags["hptune.state"] == record.state and tags["hptune.stage"] == "random"
        assert run.info.status == {"COMPLETE": "FINISHED", "PRUNED": "KILLED"}.get(
            record.state, "FAILED"
        )
        assert params == {"x": str(record.config["x"]), "seed": str(record.seed)}
        history = client.get_metric_history(run.info.run_id, "score")
        assert {m.step: m.value for m in history} == record.intermediate_values
        assert metrics["duration_s"] == pytest.approx(record.duration)
        if record.state == "FAILED":
            assert tags["hptune.failure_kind"] == "error"
            assert tags["hptune.failure_reason"] == record.failure_reason
            assert "value" not in metrics
        else:  # a pruned trial's value is its last report
            assert metrics["value"] == record.value
        if record.state == "COMPLETE":  # the objective's attributes, set after its curve
            assert metrics["attrs.test_accuracy"] == pytest.approx(1 - record.config["x"])
            assert tags["attrs.device"] == "cpu"
    assert {"COMPLETE", "PRUNED"} <= states  # both kinds of ending were logged
    # The parent's best-so-far curve: one point per complete trial, never worse.
    best = client.get_metric_history(parent.info.run_id, "best_score")
    values = [m.value for m in sorted(best, key=lambda m: m.step)]
    assert values == sorted(values) and values[-1] == study.best_value


def test_the_next_run_continues_the_parent_and_logs_the_trials_the_store_missed(make_study, uri):
    study = make_study()
    study.optimize(OBJECTIVE, n_trials=2)  # no tracking yet
    study.optimize(OBJECTIVE, n_trials=1, trackers=[MlflowTracker(uri, "exp")])
    make_study().optimize(OBJECTIVE, n_trials=2, trackers=[MlflowTracker(uri, "exp")])
    parent, children = runs(uri, "exp")
    assert [int(r.data.tags["hptune.trial"]) for r in children] == [0, 1, 2, 3, 4]
    assert parent.info.status == "FINISHED"


def test_the_experiment_defaults_to_the_study_name(make_study, uri):
    make_study("my-study").optimize(OBJECTIVE, n_trials=1, trackers=[MlflowTracker(uri)])
    parent, children = runs(uri, "my-study")
    assert parent.data.tags["hptune.study"] == "my-study" and len(children) == 1


def test_a_store_that_cannot_be_opened_stops_the_run_before_any_trial(make_study, tmp_path):
    study = make_study()
    (tmp_path / "a-file").write_text("")
    bad = f"sqlite:///{tmp_path / 'a-file' / 'mlflow.db'}"  # a folder that is a file
    with pytest.raises(HptuneError, match=r"^MLflow tracking at 'sqlite:///.*' failed: "):
        study.optimize(OBJECTIVE, n_trials=1, trackers=[MlflowTracker(bad)])
    assert study.trials == []


def test_the_best_curve_never_goes_down_when_trials_finish_out_of_order(make_study, uri):
    # Two workers tell trials in the order they finish, not by number: the best-so-far
    # curve is indexed by the complete trials logged, so it never goes down.
    study = make_study()
    study.optimize(OBJECTIVE, n_trials=6)  # no tracking yet
    tracker = MlflowTracker(uri, "exp")
    tracker.metric = "score"
    tracker.start(study)
    for record in sorted(study.trials, key=lambda r: r.number, reverse=True):
        tracker.log_trial(record)  # the last trial finished first
    tracker.close()
    parent, _ = runs(uri, "exp")
    best = MlflowClient(tracking_uri=uri).get_metric_history(parent.info.run_id, "best_score")
    points = sorted((m.step, m.value) for m in best)
    values = [value for _, value in points]
    assert [step for step, _ in points] == [1, 2, 3, 4, 5]  # five complete, trial 2 failed
    assert values == sorted(values) and values[-1] == study.best_value
    assert len(set(values)) > 1  # the order mattered: the best came in later
