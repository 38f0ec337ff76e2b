"""The final model: the best config trained again with the recipe and saved with its config,
on the train split (the trial again, bit for bit on the CPU) or on train+val (real digits
training, real SQLite files, the real CLI)."""

from __future__ import annotations

import re

import pytest
import torch
import yaml

from hptune import runner
from hptune.cli import main
from hptune.exceptions import ConfigError, HptuneError
from hptune.spec import parse_spec
from hptune.study import create_study, load_study
from hptune.tasks import get_task
from hptune.training import evaluate

SPEC = """\
name: final
task: digits-mlp
seed: 0
strategy: random
budget: {trials: 2, epochs: 2}
space:
  lr: loguniform(3e-3, 3e-2)
  warmup_epochs: randint(0, 1)
  scheduler: cosine
  model: {width: 16}
"""


@pytest.fixture(scope="module")
def storage(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('final') / 's.db'}"
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # as every test's trials run (tests/conftest.py)
    try:
        runner.run(parse_spec(SPEC, "s.yaml").replace(storage=url))
    finally:
        torch.set_num_threads(before)
    return url


def _val_accuracy(model) -> float:
    data = get_task("digits-mlp").datasets()
    return evaluate(model, data.val, torch.nn.CrossEntropyLoss(), torch.device("cpu"), False)[1]


def test_on_train_the_saved_model_is_the_best_trials_own(storage, tmp_path):
    study = load_study("final", storage)
    best = study.best_trial
    saved = runner.train_best(study, tmp_path / "m")
    info = yaml.safe_load((tmp_path / "m" / "config.yaml").read_text())
    assert info == saved.info
    assert (info["study"], info["trial"], info["seed"], info["config"]) == (
        "final", best.number, best.seed, best.config,
    )  # fmt: skip
    assert info["epochs"] == 2 and info["train_samples"] == 1077
    assert info["weights"] == f"best epoch {best.attrs['best_epoch']}"
    # Same config, seed, epochs and threads: the trial's numbers, exactly.
    assert info["metrics"]["val_accuracy"] == best.value
    assert info["metrics"]["test_accuracy"] == best.attrs["test_accuracy"]
    # The weights load into the task's model for the config, and score what the trial did.
    model = get_task("digits-mlp").build_model(info["config"])
    model.load_state_dict(torch.load(tmp_path / "m" / "model.pt", weights_only=True))
    assert _val_accuracy(model) == best.value
    loaded, loaded_info = runner.load_trained(tmp_path / "m")
    assert _val_accuracy(loaded) == best.value and loaded_info == info


def test_on_train_and_val_the_last_epoch_is_kept_and_scored_on_test(storage, tmp_path):
    study = load_study("final", storage)
    saved = runner.train_best(study, tmp_path / "tv", train_on="train+val", epochs=3, seed=7)
    info = saved.info
    assert info["train_samples"] == 1077 + 360 and info["weights"] == "last epoch"
    assert (info["epochs"], info["seed"]) == (3, 7)
    model, _ = runner.load_trained(tmp_path / "tv")
    data = get_task("digits-mlp").datasets()
    loss, accuracy = evaluate(
        model, data.test, torch.nn.CrossEntropyLoss(), torch.device("cpu"), False
    )
    assert info["metrics"]["test_accuracy"] == accuracy and accuracy > 0.5
    assert info["metrics"]["test_loss"] == pytest.approx(loss)
    assert "val_accuracy" not in info["metrics"]  # in-sample once val is trained on


def test_the_cli_trains_and_saves_where_it_is_told(storage, tmp_path, capsys):
    out = tmp_path / "new" / "folder"
    argv = ["train-best", "final", "--storage", storage, "-o", str(out), "--on", "train+val"]
    assert main([*argv, "--epochs", "1"]) == 0
    printed = capsys.readouterr().out
    assert "training trial #" in printed and f"saved {out / 'model.pt'}" in printed
    assert yaml.safe_load((out / "config.yaml").read_text())["train_on"] == "train+val"
    assert main([*argv[:-1], "train+test"]) == 2
    captured = capsys.readouterr()
    assert captured.err == (
        "error: train_best: train_on must be one of 'train', 'train+val', got 'train+test'.\n"
    )
    assert "training trial #" not in captured.out  # refused before it says it trains


def test_an_output_folder_that_cannot_be_written_is_refused_before_training(
    storage, tmp_path, capsys, monkeypatch
):
    from hptune import runner

    def must_not_train(*args, **kwargs):
        raise AssertionError("trained for a model that could not be saved")

    monkeypatch.setattr(runner, "train_best", must_not_train)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert main(["train-best", "final", "--storage", storage, "-o", str(blocker / "m")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot write the model to {blocker / 'm' / 'model.pt'}: ")


def test_a_study_without_a_model_is_refused_in_one_line(tmp_path):
    url = f"sqlite:///{tmp_path / 'o.db'}"
    python_made = create_study({"x": 1.0}, name="py", storage=url, direction="maximize")
    with pytest.raises(HptuneError, match=re.escape(
        "study 'py' was not run from a spec, so hptune does not know its model or data; "
        "train study.best_config (seed study.best_trial.seed) in your own code."
    )):  # fmt: skip
        runner.train_best(python_made, tmp_path / "m")
    objective = (
        "name: o\ntask: tests.execution.objectives:double\nbudget: {trials: 1}\nspace: {x: 1.0}\n"
    )
    study = runner.run(parse_spec(objective).replace(storage=url))
    with pytest.raises(HptuneError, match=re.escape(
        "task 'tests.execution.objectives:double' of study 'o' is a full objective (config, "
        "trial) -> float, whose model hptune never sees"
    )):  # fmt: skip
        runner.train_best(study, tmp_path / "m")
    with pytest.raises(ConfigError, match=re.escape("train_best: epochs must be an int >= 1")):
        runner.train_best(study, tmp_path / "m", epochs=0)
    assert not (tmp_path / "m").exists()
