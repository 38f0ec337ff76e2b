"""Tracking from a spec and the tracker contract: a spec run that trains for real fills both
stores, trackers stay optional (nothing imported until used, a missing package is one line
naming the extra), and a tracker that fails to log a trial never stops the study."""

from __future__ import annotations

import importlib
import logging
import re
import subprocess
import sys

import pytest

from hptune.cli import main
from hptune.exceptions import ConfigError, MissingExtraError
from hptune.spec import SpecError, parse_spec
from hptune.tracking import Tracker
from tests.integrations._extras import import_or_skip
from tests.tracking.conftest import OBJECTIVE

SPEC = """\
name: digits-tracked
task: digits-mlp
seed: 0
strategy: random
pruner: none
budget: {trials: 3, epochs: 2}
workers: 2
space:
  lr: loguniform(1e-3, 1e-1)
  model: {width: 16}
tracking:
  mlflow: {experiment: digits}
  tensorboard:
"""


@pytest.mark.slow
def test_a_spec_run_logs_every_trained_trial_to_both_stores(tmp_path, monkeypatch, capsys):
    import_or_skip("mlflow")
    import_or_skip("tensorboard")
    from mlflow.tracking import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from hptune.study import load_study

    monkeypatch.chdir(tmp_path)  # the default stores: sqlite:///mlflow.db and runs/
    (tmp_path / "spec.yaml").write_text(SPEC)
    assert main(["run", "spec.yaml"]) == 0
    study = load_study("digits-tracked", "sqlite:///hptune.db")
    records = study.trials
    assert study.metric_name == "val_accuracy" and len(records) == 3
    client = MlflowClient(tracking_uri="sqlite:///mlflow.db")
    experiment = client.get_experiment_by_name("digits").experiment_id
    children = client.search_runs([experiment], "tags.`hptune.role` = 'trial'")
    by_number = {int(r.data.tags["hptune.trial"]): r for r in children}
    assert sorted(by_number) == [0, 1, 2]
    for record in records:
        run = by_number[record.number]
        history = client.get_metric_history(run.info.run_id, "val_accuracy")
        assert {m.step: m.value for m in history} == record.intermediate_values  # epochs 1, 2
        assert run.data.metrics["attrs.test_accuracy"] == record.attrs["test_accuracy"]
        assert float(run.data.params["lr"]) == record.config["lr"]
        board = EventAccumulator(
            str(tmp_path / "runs" / "digits-tracked" / f"trial-0000{record.number}")
        )
        board.Reload()
        assert [e.step for e in board.Scalars("val_accuracy")] == [1, 2]
    # Resumed with a larger budget, the study finds its parent run again and adds one.
    assert main(["run", "spec.yaml", "--trials", "4", "--workers", "1"]) == 0
    parents = client.search_runs([experiment], "tags.`hptune.role` = 'study'")
    children = client.search_runs([experiment], "tags.`hptune.role` = 'trial'")
    assert len(parents) == 1 and len(children) == 4


def test_import_hptune_and_a_spec_with_tracking_load_neither_package():
    code = (
        "import sys, hptune; assert 'hptune.tracking' not in sys.modules; "
        "import hptune.tracking, hptune.spec; "
        "hptune.spec.parse_spec('name: a\\ntask: t\\nspace: {x: 1}\\n"
        "tracking: {mlflow: {}, tensorboard: {log_dir: r}}\\n'); "
        "print(sorted(m for m in ('mlflow', 'tensorboard', 'torch') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("tracker", "blocked", "package"),
    [
        ("mlflow", ["mlflow", "mlflow.entities"], "mlflow"),
        ("tensorboard", ["tensorboard", "torch.utils.tensorboard"], "tensorboard"),
    ],
)
def test_a_missing_package_is_one_line_naming_the_pip_install(
    monkeypatch, tracker, blocked, package
):
    from hptune.tracking import create_tracker

    for name in blocked:
        monkeypatch.setitem(sys.modules, name, None)  # None in sys.modules: import fails
    with pytest.raises(MissingExtraError) as caught:
        create_tracker(tracker)
    message = str(caught.value)
    assert message.startswith(
        f"hptune.tracking.{tracker} needs {package}: pip install 'hptune[{tracker}]' "
        "(import failed: "
    )
    assert "\n" not in message


@pytest.mark.parametrize(
    ("section", "error"),
    [
        ("{wandb: {}}", "s.yaml:4: tracking.wandb: unknown key; valid: mlflow, tensorboard"),
        (
            "{mlflow: {experimnt: x}}",
            "s.yaml:4: tracking.mlflow.experimnt: tracker 'mlflow' has no option 'experimnt'; "
            "valid: tracking_uri, experiment.",
        ),
        (
            "{tensorboard: {log_dir: ''}}",
            "s.yaml:4: tracking.tensorboard.log_dir: tracker 'tensorboard': log_dir must be a "
            "folder such as runs, that this user can write, got ''.",
        ),
        ("{mlflow: 3}", "s.yaml:4: tracking.mlflow: expected a mapping of options, got 3"),
        ("[mlflow]", "s.yaml:4: tracking: expected {mlflow: {...}, tensorboard: {...}}, got"),
    ],
)
def test_a_bad_tracking_section_is_a_spec_error_at_its_line(section, error):
    with pytest.raises(SpecError) as info:
        parse_spec(
            f"name: a\ntask: digits-mlp\nspace: {{lr: 0.1}}\ntracking: {section}\n", "s.yaml"
        )
    assert [e for e in info.value.errors if e.startswith(error)], info.value.errors


def test_validate_names_the_extra_a_spec_needs(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "mlflow", None)
    monkeypatch.setitem(sys.modules, "mlflow.entities", None)
    spec = tmp_path / "s.yaml"
    spec.write_text("name: a\ntask: digits-mlp\nspace: {lr: 0.1}\ntracking:\n  mlflow: {}\n")
    assert main(["validate", str(spec)]) == 2
    err = capsys.readouterr().err
    assert re.search(
        r"s\.yaml:5: tracking\.mlflow: hptune\.tracking\.mlflow needs mlflow: pip install "
        r"'hptune\[mlflow\]'",
        err,
    ), err


class Recording(Tracker):
    """Remembers what it was asked to log; fails on the trials in ``fail_on``."""

    name = "recording"

    def __init__(self, fail_on=(), fail_open=False):
        super().__init__()
        self.fail_on, self.fail_open, self.logged, self.closed = set(fail_on), fail_open, [], None

    def start(self, study):
        if self.fail_open:
            raise OSError("the store is gone")

    def logged_trials(self):
        return set(self.logged)

    def log_trial(self, record):
        if record.number in self.fail_on:
            raise OSError("disk full")
        self.logged.append(record.number)

    def close(self, interrupted=False):
        self.closed = interrupted


def test_a_tracker_that_fails_on_a_trial_is_a_warning_and_catches_up_next_run(make_study, caplog):
    study, tracker, seen = make_study(), Recording(fail_on={1}), []

    class Listener:
        def trial_started(self, number, config):
            seen.append(("started", number))

        def trial_finished(self, record):
            seen.append(("finished", record.number))

    with caplog.at_level(logging.WARNING, logger="hptune.study"):
        study.optimize(OBJECTIVE, n_trials=3, listener=Listener(), trackers=[tracker])
    assert len(study.trials) == 3 and tracker.logged == [0, 2] and tracker.closed is False
    assert "tracker recording could not log trial 1 (OSError: disk full); the study goes on" in (
        caplog.text
    )
    assert [s for s in seen if s[0] == "finished"] == [("finished", n) for n in range(3)]
    again = Recording()
    again.logged = [0, 2]  # what its store holds
    study.optimize(OBJECTIVE, n_trials=1, trackers=[again])
    assert again.logged == [0, 2, 1, 3]  # the missed trial first, then the new one


def test_a_tracker_that_cannot_open_stops_the_run_before_any_trial(make_study):
    study = make_study()
    with pytest.raises(OSError, match="the store is gone"):
        study.optimize(OBJECTIVE, n_trials=1, trackers=[Recording(fail_open=True)])
    assert study.trials == []
    with pytest.raises(ConfigError, match=re.escape("optimize: trackers must be a list")):
        study.optimize(OBJECTIVE, n_trials=1, trackers=Recording())
    with pytest.raises(
        ConfigError,
        match=r"is not a tracker \(it lacks open, trial_started, trial_finished, close\)",
    ):
        study.optimize(OBJECTIVE, n_trials=1, trackers=[object()])


def test_the_tracker_classes_load_on_first_use():
    tracking = importlib.import_module("hptune.tracking")
    assert tracking.TensorBoardTracker.name == "tensorboard"
    assert tracking.MlflowTracker.name == "mlflow"
    with pytest.raises(ConfigError, match=re.escape("unknown tracker 'wandb'; valid: mlflow")):
        tracking.create_tracker("wandb")
