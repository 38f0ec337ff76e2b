"""The training recipe: real training of tiny models on tiny data, exact numbers where the
schedule, the batch plan or the clip makes them computable by hand."""

from __future__ import annotations

import logging
import math
import re

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from hptune.exceptions import ConfigError
from hptune.tasks import Task, TaskData, get_task
from hptune.training._recipe_config import parse_config, scheduler_options
from hptune.training._recipe_parts import DivergenceWatch
from hptune.training.options import TrainingOptions
from hptune.training.recipe import lr_find, train
from hptune.trial import Trial, TrialDiverged, TrialPruned


def _blobs(n_train: int = 256, d: int = 10, classes: int = 3) -> TaskData:
    """Gaussian blobs: fixed splits, easy but not trivial."""
    g = torch.Generator().manual_seed(0)
    centers = 2.0 * torch.randn(classes, d, generator=g)

    def part(n: int) -> TensorDataset:
        y = torch.randint(classes, (n,), generator=g)
        return TensorDataset(centers[y] + torch.randn(n, d, generator=g), y)

    return TaskData(part(n_train), part(128), part(128))


def _task(n_train: int = 256, dropout: float = 0.0) -> Task:
    data = _blobs(n_train)

    def build(config):
        layers = [nn.Linear(10, 32), nn.ReLU(), nn.Dropout(dropout), nn.Linear(32, 3)]
        return nn.Sequential(*layers)

    return Task("blobs", build, lambda: data, num_classes=3, input_shape=(10,), default_epochs=2)


def _params(model: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def test_same_seed_is_bit_identical_and_another_seed_is_not():
    task = _task(dropout=0.2)
    config = {
        "lr": 0.05,
        "optimizer": {"name": "sgd", "momentum": 0.9},
        "scheduler": "cosine",
        "warmup_epochs": 1,
    }
    a, b = (train(config, task, epochs=3, seed=7) for _ in range(2))
    other = train(config, task, epochs=3, seed=8)
    assert all(torch.equal(x, y) for x, y in zip(_params(a.model), _params(b.model)))
    assert a.history == b.history and a.attrs == b.attrs
    assert not all(torch.equal(x, y) for x, y in zip(_params(a.model), _params(other.model)))


def test_digits_mlp_learns_well_above_chance():
    result = train({"lr": 1e-2, "batch_size": 32}, get_task("digits-mlp"), epochs=3, seed=0)
    # Ten balanced classes: chance is 0.1.
    assert result.best_value > 0.85
    assert result.attrs["test_accuracy"] > 0.85
    assert result.best_value == max(h["val_accuracy"] for h in result.history)


def test_warmup_hands_over_to_plateau_which_gets_the_metric_at_evaluation():
    # 256 samples / 64 = 4 optimizer steps per epoch; warmup ends after step 6, in epoch 2.
    # The LR is so small the accuracy never moves, so with patience 0 the plateau halves
    # the LR at every evaluation after the first one it sees. The evaluation of epoch 1
    # falls in warmup and is not given to it; epoch 2's is its first, epoch 3's halves the
    # LR, which epoch 4 trains with. history's lr is that of each epoch's last step.
    base = 1e-9
    config = {
        "lr": base,
        "optimizer": {"name": "sgd", "momentum": 0.0},
        "warmup_steps": 6,
        # eps=0: torch skips reductions smaller than eps (1e-8 by default), as these are.
        "scheduler": {"name": "plateau", "factor": 0.5, "patience": 0, "eps": 0.0},
    }
    result = train(config, _task(), epochs=5, seed=0)
    assert len({h["val_accuracy"] for h in result.history}) == 1  # the premise: constant
    lrs = [h["lr"] for h in result.history]
    assert lrs == pytest.approx([base * 3 / 6, base, base, base / 2, base / 4], rel=1e-12)


def test_plateau_mode_follows_the_direction():
    cfg = parse_config({"scheduler": {"name": "plateau", "patience": 2}})
    assert scheduler_options(cfg, 10, "maximize") == ("plateau", {"patience": 2, "mode": "max"})
    assert scheduler_options(cfg, 10, "minimize")[1]["mode"] == "min"
    given = parse_config({"scheduler": {"name": "plateau", "mode": "min"}})
    assert scheduler_options(given, 10, "maximize")[1]["mode"] == "min"


@pytest.mark.parametrize(
    ("scheduler", "last_lr"),
    [
        # 4 warmup steps, then T = 8 steps: the last step trains at step 7 of 8.
        ("cosine", 0.05 * (1 + math.cos(math.pi * 7 / 8))),
        ("linear", 0.1 / 8),
        ("polynomial", 0.1 / 8),
        # OneCycle's last step is its minimum, max_lr / (div_factor * final_div_factor);
        # torch raises if stepped past total_steps, so finishing shows the length is right.
        ("onecycle", 0.1 / (25.0 * 1e4)),
    ],
)
def test_schedule_lengths_are_the_steps_after_warmup(scheduler, last_lr):
    config = {"lr": 0.1, "scheduler": scheduler, "warmup_epochs": 1, "optimizer": "sgd"}
    result = train(config, _task(), epochs=3, seed=0)
    assert result.attrs["warmup_steps"] == 4
    assert result.history[-1]["lr"] == pytest.approx(last_lr, rel=1e-9)


def test_warmup_epochs_become_optimizer_steps():
    # 2 warmup epochs of 4 steps; step k of warmup trains at lr * k / 8 (k from 0).
    result = train({"lr": 0.1, "warmup_epochs": 2}, _task(), epochs=3, seed=0)
    assert [h["lr"] for h in result.history] == pytest.approx([0.1 * 3 / 8, 0.1 * 7 / 8, 0.1])
    assert result.attrs["warmup_steps"] == 8


def test_accumulation_equals_one_large_batch():
    # 250 samples: three windows of 64 and a last one of 58, cut into 15+15+14+14.
    task = _task(n_train=250)
    config = {"lr": 0.05, "batch_size": 64, "optimizer": {"name": "sgd", "momentum": 0.9}}
    whole = train(config, task, epochs=2, seed=3)
    split = train(config, task, epochs=2, seed=3, max_micro_batch=16)
    assert (split.attrs["micro_batch_size"], split.attrs["accumulation_steps"]) == (16, 4)
    assert (whole.attrs["micro_batch_size"], whole.attrs["accumulation_steps"]) == (64, 1)
    assert split.attrs["optimizer_steps"] == whole.attrs["optimizer_steps"] == 8
    for a, b in zip(_params(whole.model), _params(split.model)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_a_huge_lr_raises_trial_diverged_with_the_reason():
    config = {"lr": 1e3, "optimizer": {"name": "sgd", "momentum": 0.0}}
    with pytest.raises(TrialDiverged, match=r"^loss (became nan|exploded) at epoch 1 step \d+"):
        train(config, _task(), epochs=2, seed=0)


def test_divergence_watch_rule_by_hand():
    # Running mean after losses 1 and L: (0.09 + 0.1 L) / 0.19, which passes 10 at L = 18.1.
    watch = DivergenceWatch(10)
    watch.update(1.0, 1, 1)
    watch.update(18.0, 1, 2)  # running 9.947: not yet
    expected = (
        "loss exploded at epoch 1 step 2: running training loss 10.47 > divergence_factor "
        "10 x initial loss 1"
    )
    fresh = DivergenceWatch(10)
    fresh.update(1.0, 1, 1)
    with pytest.raises(TrialDiverged, match=re.escape(expected)):
        fresh.update(19.0, 1, 2)
    with pytest.raises(TrialDiverged, match=re.escape("loss became nan at epoch 3 step 7")):
        watch.update(math.nan, 3, 7)


def test_pruning_stops_training_and_keeps_the_attrs():
    reports = []

    def reporter(step, value):
        reports.append((step, value))
        return True  # the pruner says stop at the first report

    trial = Trial(0, {"lr": 0.01}, seed=0, reporter=reporter)
    with pytest.raises(TrialPruned):
        train({"lr": 0.01}, _task(), epochs=5, seed=0, trial=trial)
    assert [step for step, _ in reports] == [1]
    assert trial.attrs["epochs_run"] == 1 and "test_accuracy" in trial.attrs


def test_attrs_are_recorded_and_test_accuracy_is_the_best_epochs_model():
    trial = Trial(0, {}, seed=0, reporter=lambda step, value: False)
    config = {"lr": 0.01, "batch_size": 32}
    result = train(config, _task(), epochs=3, seed=0, trial=trial, save_best=True)
    assert trial.attrs == result.attrs
    assert {k: result.attrs[k] for k in ("epochs_run", "optimizer_steps", "device")} == {
        "epochs_run": 3,
        "optimizer_steps": 24,
        "device": "cpu",
    }
    model = _task().build_model(config)
    model.load_state_dict(result.best_state)
    x, y = _task().datasets().test.tensors
    accuracy = (model(x).argmax(dim=1) == y).float().mean().item()
    assert result.attrs["test_accuracy"] == pytest.approx(accuracy)
    best = result.history[result.attrs["best_epoch"] - 1]
    assert result.attrs["val_accuracy"] == best["val_accuracy"] == result.best_value


def test_save_best_to_a_path(tmp_path):
    path = tmp_path / "best.pt"
    result = train({"lr": 0.01}, _task(), epochs=2, seed=0, save_path=path)
    saved = torch.load(path)
    assert saved.keys() == result.best_state.keys()
    assert all(torch.equal(saved[k], result.best_state[k]) for k in saved)


def test_val_loss_metric_is_minimized():
    result = train({"lr": 0.01}, _task(), epochs=3, seed=0, metric="val_loss")
    assert result.best_value == min(h["val_loss"] for h in result.history)


@pytest.mark.parametrize(("policy", "factor"), [("linear", 2.0), ("sqrt", math.sqrt(2.0))])
def test_lr_scaling_with_batch_size(policy, factor):
    result = train(
        {"lr": 0.01, "batch_size": 64},
        _task(),
        epochs=1,
        seed=0,
        lr_scaling=policy,
        base_batch_size=32,
    )
    assert result.attrs["lr"] == pytest.approx(0.01 * factor, rel=1e-15)
    assert result.history[0]["lr"] == result.attrs["lr"]


@pytest.mark.parametrize("max_micro_batch", [None, 8])
def test_grad_clip_bounds_one_sgd_step_exactly(max_micro_batch):
    # One step of plain SGD with a clipped gradient moves the weights by lr * clip in norm;
    # with accumulation the clip applies to the window's whole gradient, so the same holds.
    task = _task(n_train=64)
    config = {"lr": 1.0, "optimizer": {"name": "sgd", "momentum": 0.0}, "grad_clip": 1e-3}
    result = train(config, task, epochs=1, seed=0, max_micro_batch=max_micro_batch)
    assert result.attrs["optimizer_steps"] == 1
    torch.manual_seed(0)  # the recipe seeds, then builds the model: the same initial weights
    initial = _params(task.build_model(config))
    step = torch.cat([(a - b).flatten() for a, b in zip(_params(result.model), initial)])
    assert step.norm().item() == pytest.approx(1e-3, rel=1e-4)


def test_unknown_config_key_lists_the_valid_ones():
    message = (
        "Unknown config key(s) 'momentum'. Valid keys: lr, batch_size, weight_decay, "
        "decay_map, warmup_epochs, warmup_steps, optimizer, scheduler, grad_clip, batch_growth, "
        "model. Options of your own model go under 'model:'."
    )
    with pytest.raises(ConfigError, match=re.escape(message)):
        train({"lr": 0.1, "momentum": 0.9}, _task(), epochs=1, seed=0)


@pytest.mark.parametrize(
    ("config", "options", "message"),
    [
        (
            {"lr": -1.0},
            {},
            "config['lr'] must be a finite number > 0, got -1.0; peak learning rate",
        ),
        ({"batch_size": 0}, {}, "config['batch_size'] must be an int >= 1, got 0; effective batch"),
        (
            {"warmup_epochs": 1, "warmup_steps": 5},
            {},
            "config sets both warmup_epochs=1 and warmup_steps=5; keep one of them.",
        ),
        ({"optimizer": 3}, {}, "config['optimizer'] must be a name or a mapping with a 'name'"),
        ({"scheduler": "cosinus"}, {}, "Unknown scheduler 'cosinus'. Valid names:"),
        ({}, {"metric": "val_los"}, "metric must be one of 'val_accuracy', 'val_loss'"),
        (
            {},
            {"lr_scaling": "cubic"},
            "training option 'lr_scaling': must be one of 'none', 'linear', 'sqrt', got 'cubic'.",
        ),
        ({}, {"lr_scaling": "linear"}, "'lr_scaling': 'linear' needs base_batch_size"),
        (
            {},
            {"max_micro_batch": 0},
            "training option 'max_micro_batch': must be an int >= 1 or None, got 0.",
        ),
        ({}, {"divergence_factor": 1}, "'divergence_factor': must be a finite number > 1, got 1."),
        ({}, {"grad_clipping": 1.0}, "'grad_clipping': unknown option (did you mean 'grad_clip'"),
        ({}, {"epochs": 0}, "epochs must be an int >= 1, got 0."),
    ],
)
def test_bad_config_and_options_are_config_errors(config, options, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        train(config, _task(), **{"epochs": 1, "seed": 0, **options})


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only refusal")
def test_cuda_device_without_cuda_is_refused():
    with pytest.raises(ConfigError, match=re.escape("device='cuda' but CUDA is not available")):
        train({}, _task(), epochs=1, seed=0, device="cuda")


def test_amp_is_ignored_on_cpu_with_a_note(caplog):
    with caplog.at_level(logging.WARNING, logger="hptune.training.recipe"):
        result = train({"lr": 0.01}, _task(), epochs=1, seed=0, amp=True, device="cpu")
    assert result.attrs["amp"] is False
    assert "amp=True is ignored on cpu" in caplog.text


def test_options_as_an_object_and_as_keywords_train_alike():
    config = {"lr": 0.05, "batch_size": 32}
    options = TrainingOptions(grad_clip=0.5, max_micro_batch=16)
    as_object = train(config, _task(), epochs=2, seed=1, options=options)
    as_keywords = train(config, _task(), epochs=2, seed=1, grad_clip=0.5, max_micro_batch=16)
    over = train(config, _task(), epochs=2, seed=1, options=options, grad_clip=None)
    assert as_object.history == as_keywords.history
    assert over.attrs["micro_batch_size"] == 16 and over.history != as_object.history
    with pytest.raises(ConfigError, match=re.escape("options must be a TrainingOptions, got {}")):
        train(config, _task(), epochs=1, seed=0, options={})  # type: ignore[arg-type]


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_amp_and_fitted_micro_batch():
    config = {"lr": 1e-2, "batch_size": 64}
    result = train(config, get_task("digits-mlp"), epochs=2, seed=0, amp=True, fit_micro_batch=True)
    assert result.attrs["device"].startswith("cuda") and result.attrs["amp"] is True
    # A 64-sample batch of a small MLP fits whole: no accumulation.
    assert (result.attrs["micro_batch_size"], result.attrs["accumulation_steps"]) == (64, 1)
    assert result.best_value > 0.8


def test_lr_find_sweeps_the_task_and_is_seeded():
    config = {"optimizer": {"name": "sgd", "momentum": 0.0}, "batch_size": 32}
    a = lr_find(_task(), config, seed=0, min_lr=1e-4, max_lr=10.0, n_steps=30)
    b = lr_find(_task(), config, seed=0, min_lr=1e-4, max_lr=10.0, n_steps=30)
    assert a == b
    assert a.lrs[0] == 1e-4 and a.lrs[1] == pytest.approx(1e-4 * 1e5 ** (1 / 29))
    assert min(a.smoothed_losses) < a.smoothed_losses[0]  # the loss falls somewhere
    assert a.suggested_lr is not None and 1e-4 < a.suggested_lr < 10.0
    with pytest.raises(ConfigError, match=re.escape("Unknown config key(s) 'momentum'")):
        lr_find(_task(), {"momentum": 0.9})


@pytest.mark.parametrize("n", [10, 12])
@pytest.mark.parametrize("batch_size", [3, 4, 5000])
def test_tensor_batches_draw_exactly_what_the_dataloader_draws(n, batch_size):
    """The recipe's fast loader must not change a single random draw: same batches, same
    shuffling generator state and same global RNG state after every epoch, also when an
    epoch is abandoned part-way."""
    from torch.utils.data import BatchSampler, DataLoader, RandomSampler, TensorDataset

    from hptune.training._recipe_parts import TensorBatches

    data = TensorDataset(torch.arange(n * 2.0).reshape(n, 2), torch.arange(n))

    def epochs(make):
        torch.manual_seed(123)
        g = torch.Generator().manual_seed(7)
        loader = make(g)
        seen = []
        for epoch in range(3):
            batches = []
            for i, (x, y) in enumerate(loader):
                batches.append((x.clone(), y.clone()))
                if epoch == 1 and i == 0:
                    break  # abandoned part-way
            seen.append((batches, g.get_state().clone(), torch.get_rng_state().clone()))
        return seen

    fast = epochs(lambda g: TensorBatches(data, batch_size, g))
    slow = epochs(
        lambda g: DataLoader(
            data,
            sampler=BatchSampler(RandomSampler(data, generator=g), batch_size, False),
            batch_size=None,
        )
    )
    for (fb, fg, fr), (sb, sg, sr) in zip(fast, slow, strict=True):
        assert len(fb) == len(sb)
        for (fx, fy), (sx, sy) in zip(fb, sb, strict=True):
            assert torch.equal(fx, sx) and torch.equal(fy, sy)
        assert torch.equal(fg, sg) and torch.equal(fr, sr)


def test_config_problems_name_the_key_and_option_without_training():
    from hptune.training import config_problems

    assert config_problems({"lr": 0.1, "optimizer": "sgd"}) == []
    problems = config_problems(
        {"lrr": 0.1, "optimizer": {"name": "sgd", "momentum": 0.9, "dampening": 2.0}}
    )
    assert [path for path, _ in problems] == [("lrr",), ("optimizer", "dampening")]
    assert "unknown key (did you mean 'lr'?)" in problems[0][1]
    ((path, message),) = config_problems({"lr": -1.0, "batch_size": 8})
    assert path == ("lr",) and message.startswith("the recipe rejects -1.0: config['lr']")
    ((path, _),) = config_problems({"warmup_epochs": 1, "warmup_steps": 3})
    assert path == ("warmup_steps",)
