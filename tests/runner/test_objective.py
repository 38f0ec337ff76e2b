"""TaskObjective: plain data that pickles, trains through the recipe, returns the best epoch."""

from __future__ import annotations

import pickle
import re

import pytest
import torch

import hptune
from hptune.exceptions import ConfigError
from hptune.runner import TaskObjective
from hptune.tasks import get_task
from hptune.training.options import TrainingOptions
from hptune.training.recipe import train
from hptune.trial import Trial

CONFIG = {"lr": 1e-2, "batch_size": 32}


def user_objective(config, trial):
    """A full user objective: TaskObjective must call it as it is."""
    trial.report(1, config["x"])
    return config["x"] * 3


def _trial(number: int = 0, seed: int = 0, reports: list | None = None) -> Trial:
    def reporter(step, value):
        if reports is not None:
            reports.append((step, value))
        return False

    return Trial(number, dict(CONFIG), seed, reporter)


def test_pickles_and_the_copy_trains_to_the_recipes_best_value():
    objective = TaskObjective("digits-mlp", epochs=2, options=TrainingOptions(grad_clip=5.0))
    copy = pickle.loads(pickle.dumps(objective))
    assert copy == objective
    reports: list = []
    trial = _trial(seed=4, reports=reports)
    value = copy(dict(CONFIG), trial)
    direct = train(CONFIG, get_task("digits-mlp"), epochs=2, seed=4, grad_clip=5.0)
    # The best epoch's validation accuracy, not the last's; same seed, same run.
    assert value == direct.best_value == max(h["val_accuracy"] for h in direct.history)
    assert [step for step, _ in reports] == [1, 2]
    assert trial.attrs["test_accuracy"] == direct.attrs["test_accuracy"]


def test_a_user_objective_is_called_as_it_is():
    objective = TaskObjective("tests.runner.test_objective:user_objective")
    reports: list = []
    trial = Trial(0, {"x": 2.0}, 0, lambda step, value: reports.append((step, value)) or False)
    assert objective({"x": 2.0}, trial) == 6.0
    assert reports == [(1, 2.0)]


def test_save_best_writes_one_file_per_trial(tmp_path):
    objective = TaskObjective(
        "digits-mlp", epochs=1, options=TrainingOptions(save_best=True), output_dir=str(tmp_path)
    )
    objective(dict(CONFIG), _trial(number=3))
    state = torch.load(tmp_path / "trial-3-best.pt")
    get_task("digits-mlp").build_model(CONFIG).load_state_dict(state)  # strict: all keys
    assert [p.name for p in tmp_path.iterdir()] == ["trial-3-best.pt"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"options": {"grad_clip": 1.0}}, "options must be a TrainingOptions, got {'grad_clip'"),
        (
            {"options": TrainingOptions(save_best=True)},
            "training.save_best=true needs output_dir",
        ),
        (
            {"metric": "accuracy"},
            "metric must be one of 'val_accuracy', 'val_loss' (measured on the validation "
            "split), got 'accuracy'.",
        ),
    ],
)
def test_bad_arguments_are_refused_at_construction(kwargs, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        TaskObjective("digits-mlp", **kwargs)


def test_a_task_object_is_refused_in_favour_of_its_name():
    with pytest.raises(ConfigError, match=re.escape("TaskObjective needs the task's name")):
        TaskObjective(get_task("digits-mlp"))  # type: ignore[arg-type]


@pytest.mark.slow
def test_runs_in_a_process_pool_study():
    space = {"lr": hptune.loguniform(1e-3, 3e-2), "batch_size": 32}
    study = hptune.create_study(
        space, storage=None, strategy="random", seed=0, direction="maximize"
    )
    study.optimize(TaskObjective("digits-mlp", epochs=1), n_trials=2, n_workers=2)
    assert [t.state for t in study.trials] == ["COMPLETE", "COMPLETE"]
    for record in study.trials:
        assert 0.1 < record.value <= 1.0
        assert record.attrs["epochs_run"] == 1 and "test_accuracy" in record.attrs
