"""TensorBoard tracking, read back with TensorBoard's own EventAccumulator: a folder per
trial with its curve, value, attributes and hyperparameters, from worker processes too."""

from __future__ import annotations

import pytest

from tests.integrations._extras import import_or_skip
from tests.tracking.conftest import OBJECTIVE

import_or_skip("tensorboard")

from tensorboard.backend.event_processing.event_accumulator import (  # noqa: E402
    EventAccumulator,
)

from hptune.tracking import TensorBoardTracker  # noqa: E402


def events(folder) -> EventAccumulator:
    accumulator = EventAccumulator(str(folder))
    accumulator.Reload()
    return accumulator


@pytest.mark.slow
def test_every_trial_of_two_workers_is_a_run_folder_with_its_record(make_study, tmp_path):
    study = make_study("a/b")  # a name that is no folder name
    study.optimize(OBJECTIVE, n_trials=5, n_workers=2, trackers=[TensorBoardTracker(tmp_path)])
    root = tmp_path / "a_b"
    assert [t.state for t in study.trials].count("FAILED") == 1  # trial 2
    assert sorted(p.name for p in root.iterdir()) == [f"trial-0000{n}" for n in range(5)]
    for record in study.trials:
        board = events(root / f"trial-{record.number:05d}")
        scalars = board.Tags()["scalars"]
        curve = {e.step: e.value for e in board.Scalars("score")} if "score" in scalars else {}
        assert curve == pytest.approx(record.intermediate_values)
        text = board.Tensors("trial/text_summary")[0].tensor_proto.string_val[0].decode()
        assert f"state: {record.state}" in text
        if record.state == "COMPLETE":
            assert [e.value for e in board.Scalars("value")] == pytest.approx([record.value])
            assert board.Scalars("attrs/test_accuracy")[0].value == pytest.approx(
                1 - record.config["x"]
            )
        else:
            assert "value" not in scalars
            assert "failure: error" in text


def test_hyperparameters_are_the_config_and_the_seed(make_study, tmp_path):
    from tensorboard.plugins.hparams import plugin_data_pb2

    study = make_study()
    study.optimize(OBJECTIVE, n_trials=1, trackers=[TensorBoardTracker(tmp_path)])
    board = events(tmp_path / "tracked" / "trial-00000")
    content = board.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    start = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    (record,) = study.trials
    assert start.hparams["x"].number_value == pytest.approx(record.config["x"])
    assert start.hparams["seed"].number_value == record.seed


def test_the_next_run_logs_only_the_trials_the_folder_lacks(make_study, tmp_path):
    study = make_study()
    study.optimize(OBJECTIVE, n_trials=2)  # no tracking yet
    study.optimize(OBJECTIVE, n_trials=1, trackers=[TensorBoardTracker(tmp_path)])
    study.optimize(OBJECTIVE, n_trials=1, trackers=[TensorBoardTracker(tmp_path)])
    folders = sorted((tmp_path / "tracked").iterdir())
    assert [p.name for p in folders] == [f"trial-0000{n}" for n in range(4)]
    # Logged once each: one event file for the curve and one for the hyperparameters.
    assert [len(list(p.iterdir())) for p in folders] == [2, 2, 2, 2]


@pytest.mark.parametrize("where", ["/proc/hptune-runs", "{tmp}/a-file/runs"])
def test_a_log_dir_that_cannot_be_written_is_refused_by_the_spec(tmp_path, where):
    """It passed validate before, and the run then died with a traceback at its first
    trial, leaving an empty study behind."""
    from hptune.spec import SpecError, parse_spec

    (tmp_path / "a-file").write_text("not a folder")
    log_dir = where.format(tmp=tmp_path)
    text = f"name: t\ntask: digits-mlp\ntracking: {{tensorboard: {{log_dir: {log_dir}}}}}\n"
    with pytest.raises(SpecError, match="log_dir must be a folder such as runs, that this user"):
        parse_spec(text + "space: {lr: 0.1}\n")
    assert not (tmp_path / "a-file").is_dir()
    ok = text.replace(log_dir, str(tmp_path / "new" / "runs"))
    parse_spec(ok + "space: {lr: 0.1}\n")  # a folder still to be made is fine
    assert not (tmp_path / "new").exists()  # and checking it makes nothing
