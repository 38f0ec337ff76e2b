"""The recipe's batch-growth schedule: each optimizer step's effective batch, micro-batches
and learning rate, recorded step by step from real training and checked against the
schedule worked out by hand."""

from __future__ import annotations

import math
import re
import textwrap

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook

from hptune import runner
from hptune.exceptions import ConfigError
from hptune.spec import SpecError, parse_spec
from hptune.training._batch_growth import batch_sizes, parse_batch_growth, warmup_steps_over
from hptune.training.recipe import parse_config, train
from tests.training.test_recipe import _params, _task


class StepLog:
    """Every optimizer step's LR (first group) and samples, and every training micro-batch."""

    def __init__(self) -> None:
        self.micro: list[int] = []
        self.steps: list[tuple[int, float]] = []
        self._pending = 0

    def forward(self, module, inputs, output) -> None:
        if module.training:
            self.micro.append(len(inputs[0]))
            self._pending += len(inputs[0])

    def step(self, optimizer, args, kwargs) -> None:
        self.steps.append((self._pending, optimizer.param_groups[0]["lr"]))
        self._pending = 0


@pytest.fixture
def log():
    log = StepLog()
    handle = register_optimizer_step_pre_hook(log.step)
    yield log
    handle.remove()


def _logged_task(log: StepLog, n_train: int = 100):
    task = _task(n_train=n_train)
    build = task.build_model

    def build_logged(config):
        model = build(config)
        model.register_forward_hook(log.forward)
        return model

    return type(task)("blobs", build_logged, task.datasets, 3, (10,), default_epochs=2)


def test_effective_batch_micro_batches_and_lr_follow_the_schedule_step_by_step(log):
    # 100 samples from batch 16, doubled after epochs 2 and 4 and capped at 50; the LR
    # follows the batch linearly; micro-batches of at most 20.
    config = {
        "lr": 0.1,
        "batch_size": 16,
        "optimizer": {"name": "sgd", "momentum": 0.0},
        "batch_growth": {"factor": 2, "every_epochs": 2, "max_batch_size": 50,
                         "lr_policy": "linear"},
    }  # fmt: skip
    result = train(config, _logged_task(log), epochs=6, seed=0, max_micro_batch=20)
    epoch_16 = [16] * 6 + [4]  # 100 = 6 x 16 + 4
    epoch_32 = [32] * 3 + [4]
    epoch_50 = [50, 50]
    batches = 2 * epoch_16 + 2 * epoch_32 + 2 * epoch_50
    lrs = [0.1] * 14 + [0.2] * 8 + [0.1 * 50 / 16] * 4
    assert [n for n, _ in log.steps] == batches
    assert [lr for _, lr in log.steps] == pytest.approx(lrs, rel=1e-12)
    # 16 fits a micro-batch; 32 is cut in two (16 + 16, the short 4 in 2 + 2); 50 in three.
    micro_32 = [16, 16] * 3 + [2, 2]
    assert log.micro == 2 * epoch_16 + 2 * micro_32 + 2 * [17, 17, 16] * 2
    assert [h["batch_size"] for h in result.history] == [16, 16, 32, 32, 50, 50]
    assert result.attrs["final_batch_size"] == 50
    assert result.attrs["optimizer_steps"] == len(batches) == 26


def test_the_schedule_length_counts_the_steps_of_the_grown_epochs():
    # Cosine over 7 + 7 + 4 + 4 + 2 + 2 = 26 steps: the last step trains at step 25 of 26.
    config = {
        "lr": 0.1,
        "batch_size": 16,
        "scheduler": "cosine",
        "optimizer": "sgd",
        "batch_growth": {"factor": 2, "every_epochs": 2, "max_batch_size": 50},
    }
    result = train(config, _task(n_train=100), epochs=6, seed=0)
    assert result.history[-1]["lr"] == pytest.approx(0.05 * (1 + math.cos(math.pi * 25 / 26)))


def test_memory_cap_grows_to_the_largest_micro_batch_without_accumulation(log):
    config = {"lr": 0.05, "batch_size": 16, "batch_growth": {"factor": 2, "every_epochs": 1}}
    result = train(config, _logged_task(log), epochs=4, seed=0, max_micro_batch=40)
    assert [h["batch_size"] for h in result.history] == [16, 32, 40, 40]
    assert log.micro == [n for n, _ in log.steps]  # one micro-batch per step throughout


def test_factor_one_is_no_growth_bit_for_bit():
    config = {"lr": 0.05, "batch_size": 16, "warmup_epochs": 1, "scheduler": "cosine"}
    grown = {**config, "batch_growth": {"factor": 1, "every_epochs": 1}}
    a, b = (train(c, _task(), epochs=3, seed=0) for c in (config, grown))
    assert a.history == b.history and a.attrs == b.attrs
    assert all(torch.equal(x, y) for x, y in zip(_params(a.model), _params(b.model)))


def test_warmup_epochs_count_the_steps_of_the_epochs_they_cover():
    # 1.5 warmup epochs over epochs of 7 and 4 steps: 7 + 0.5 x 4 = 9 steps.
    assert warmup_steps_over(1.5, [7, 4, 4]) == 9
    assert warmup_steps_over(5, [7, 4]) == 11  # longer than the run: all of it
    growth = parse_batch_growth({"factor": 1.5, "every_epochs": 1})
    assert batch_sizes(10, 20, growth, epochs=4) == [10, 15, 20, 20]
    assert batch_sizes(10, 20, None, epochs=2) == [10, 10]


@pytest.mark.parametrize(
    ("growth", "message"),
    [
        ({"factor": 2}, "config['batch_growth'] needs every_epochs"),
        ({"every_epochs": 2, "step": 1}, "config['batch_growth'] has unknown option(s) 'step'"),
        (
            {"every_epochs": 2, "factor": 0.5},
            "config['batch_growth']['factor'] must be a finite number >= 1, got 0.5",
        ),
        (
            {"every_epochs": 2, "lr_policy": "cubic"},
            "config['batch_growth']['lr_policy'] must be one of 'keep', 'linear', 'sqrt', "
            "got 'cubic'",
        ),
        (
            {"every_epochs": 2, "max_batch_size": "gpu"},
            "config['batch_growth']['max_batch_size'] must be an int >= 1, got 'gpu'",
        ),
        (5, "config['batch_growth'] must be a mapping"),
    ],
)
def test_bad_growth_options_are_named(growth, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config({"batch_growth": growth})


SPEC = """\
name: grow
task: digits-mlp
budget: {trials: 2, epochs: 2}
space:
  lr: loguniform(1e-3, 1e-1)
  batch_size: choice(16, 32)
  batch_growth:
    factor: choice(1, 2)
    every_epochs: randint(1, 3)
    lr_policy: choice('keep', 'sqrt')
"""


def test_a_spec_searches_the_growth_schedule_and_its_bad_values_are_named():
    runner.check_spec(parse_spec(SPEC, "grow.yaml"))
    bad = SPEC.replace("factor: choice(1, 2)", "factor: uniform(0.5, 2)")
    with pytest.raises(SpecError) as info:
        runner.check_spec(parse_spec(textwrap.dedent(bad), "grow.yaml"))
    assert info.value.errors[0].startswith(
        "grow.yaml:8: space.batch_growth.factor: uniform(0.5, 2.0) reaches 0.5 at its low end"
    )
