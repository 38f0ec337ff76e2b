"""The recipe's step never waits for the device: the divergence watch reads the losses every
16 optimizer steps and at each epoch's end, and a diverged run still stops within those
16 steps and fails as ``diverged`` at the step it diverged. Runs on the CPU, recording when
the loop reads a tensor's value on the host: on a GPU each such moment is a sync point.
(On the CPU a read costs nothing and the recipe reads scalars one by one; on a GPU it
stacks them into one transfer, so what counts is when reads happen, not how many.)"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook

from hptune.execution import FailureKind, OutcomeState, TrialJob
from hptune.execution._run import run_job
from hptune.training._recipe_parts import DIVERGENCE_CHECK_STEPS, DivergenceWatch, splits_on
from hptune.training.recipe import train
from hptune.trial import TrialDiverged
from tests.training.test_recipe import _blobs, _task

#: The Tensor methods that copy a value to the host: each one a sync point on a GPU.
READS = ("item", "tolist", "__float__", "__int__", "__bool__")


@pytest.fixture
def read_at(monkeypatch: pytest.MonkeyPatch):
    """The optimizer steps taken before each host read of a tensor, as a set."""
    steps, seen = [0], set()

    def count(optimizer, args, kwargs):
        steps[0] += 1

    for name in READS:
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _original=original):
            seen.add(steps[0])
            return _original(self, *args)

        monkeypatch.setattr(torch.Tensor, name, counted)
    handle = register_optimizer_step_post_hook(count)
    yield seen
    handle.remove()


def test_an_epoch_of_32_steps_reads_after_steps_16_and_32_only(read_at):
    # 256 samples in batches of 8: 32 optimizer steps per epoch. The watch reads after steps
    # 16 and 32 of each epoch, where the epoch also ends and is evaluated (the test split
    # once, at the end). Clipping reads nothing either: the norm stays a tensor.
    config = {"lr": 0.01, "batch_size": 8, "optimizer": "sgd", "grad_clip": 1.0}
    result = train(config, _task(n_train=256), epochs=2, seed=0)
    assert result.attrs["optimizer_steps"] == 64
    assert read_at == {16, 32, 48, 64}


def test_accumulation_reads_at_the_epochs_end_only(read_at):
    config = {"lr": 0.01, "batch_size": 32, "optimizer": "sgd", "grad_clip": 1.0}
    train(config, _task(n_train=256), epochs=2, seed=0, max_micro_batch=8)  # 8 steps of 4
    assert read_at == {8, 16}


class NaNFrom(nn.Module):
    """A small MLP whose output turns NaN from its ``first_bad``-th training forward on."""

    def __init__(self, first_bad: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 3))
        self.first_bad = first_bad
        self.training_calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        if self.training:
            self.training_calls += 1
            if self.training_calls >= self.first_bad:
                out = out * math.nan
        return out


MODELS: list[NaNFrom] = []


def nan_at_step_5(config: dict, trial) -> float:
    """An objective whose model's loss is NaN from optimizer step 5 (one micro-batch each)."""
    task = _task(n_train=256)
    task = type(task)(
        "nan", lambda c: MODELS.append(NaNFrom(5)) or MODELS[-1], task.datasets, 3, (10,)
    )
    return train(config, task, epochs=2, seed=trial.seed, trial=trial).best_value


def test_a_diverged_run_stops_at_the_next_read_and_fails_as_diverged_at_its_step():
    MODELS.clear()
    job = TrialJob(0, {"lr": 0.01, "batch_size": 8}, 0, nan_at_step_5)
    outcome = run_job(job, reporter=lambda step, value: False)
    assert outcome.state is OutcomeState.FAILED and outcome.kind is FailureKind.DIVERGED
    assert outcome.reason == "TrialDiverged: loss became nan at epoch 1 step 5"
    # Step 5 diverged; the losses were read after step 16, and training stopped there.
    assert MODELS[-1].training_calls == DIVERGENCE_CHECK_STEPS == 16


def test_the_watch_gives_the_rule_and_message_of_the_step_that_diverged_when_read_late():
    # Losses 1 then 19 at step 2 explode the running mean (see the hand computation in
    # test_recipe.py); read three steps later, the message still names step 2.
    watch = DivergenceWatch(10.0, every=4)
    for step, loss in enumerate([1.0, 19.0, 1.0], start=1):
        watch.add(torch.tensor(loss), 8)
        watch.end_step(epoch=1, step=step)
    expected = (
        "loss exploded at epoch 1 step 2: running training loss 10.47 > divergence_factor "
        "10 x initial loss 1"
    )
    watch.add(torch.tensor(1.0), 8)
    with pytest.raises(TrialDiverged, match=re.escape(expected)):
        watch.end_step(epoch=1, step=4)
    assert watch.n_reads == 1


def test_the_epoch_loss_is_the_float32_window_sum_over_samples():
    # A window of micro-batches of 3 and 2 samples with mean losses 0.1 and 0.7: the
    # window's loss is (0.1 * 3 + 0.7 * 2) / 5 summed in float32, as the loop summed it on
    # the device; the epoch's loss weights each window by its samples.
    watch = DivergenceWatch(10.0)
    watch.add(torch.tensor(0.1), 3)
    watch.add(torch.tensor(0.7), 2)
    watch.end_step(epoch=1, step=1)
    watch.add(torch.tensor(0.4), 5)
    watch.end_step(epoch=1, step=2)
    f32 = np.float32
    first = float(f32(f32(0.1) * f32(3)) + f32(f32(0.7) * f32(2))) / 5
    second = float(f32(f32(0.4) * f32(5))) / 5
    assert watch.end_epoch() == (first * 5 + second * 5) / 10
    assert math.isnan(watch.end_epoch())  # an epoch without steps has no mean


def test_the_test_split_is_evaluated_once_on_the_best_epochs_weights():
    # SGD at lr 1 with momentum overshoots: validation accuracy peaks at epoch 2 of 4.
    # The final model must still be the last epoch's (the best weights are only lent to it
    # for the one test evaluation).
    config = {"lr": 1.0, "batch_size": 32, "optimizer": {"name": "sgd", "momentum": 0.9}}
    data = _blobs()
    task = _task()
    result = train(config, task, epochs=4, seed=0, data=data, save_best=True)
    assert result.attrs["best_epoch"] == 2  # the premise
    assert result.history[-1]["val_accuracy"] != result.best_value
    x, y = data.val.tensors
    with torch.no_grad():
        last = (result.model(x).argmax(dim=1) == y).float().mean().item()
    assert last == pytest.approx(result.history[-1]["val_accuracy"])
    model = task.build_model(config)
    model.load_state_dict(result.best_state)
    x, y = data.test.tensors
    with torch.no_grad():
        best = (model(x).argmax(dim=1) == y).float().mean().item()
    assert result.attrs["test_accuracy"] == pytest.approx(best)


def test_in_memory_splits_move_to_an_accelerator_once_when_they_fit():
    # "meta" stands in for a GPU here (no memory, no CUDA needed); the rule is the same.
    data = _blobs()  # 512 samples of 10 float32 + an int64 label: 512 x 48 bytes
    size = 512 * (10 * 4 + 8)
    moved = splits_on(data, torch.device("meta"), free_bytes=4 * size)
    assert all(t.device.type == "meta" for part in moved for t in part.tensors)
    assert splits_on(data, torch.device("meta"), free_bytes=4 * size - 1) is data  # > 25%
    assert splits_on(data, torch.device("cpu")) is data
    listed = type(data)(list(data.train), data.val, data.test)  # not a TensorDataset
    assert splits_on(listed, torch.device("meta"), free_bytes=10 * size) is listed
