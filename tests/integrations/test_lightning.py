"""hptune.integrations.lightning with real Lightning training of a small model."""

from __future__ import annotations

import math
import re

import pytest

from hptune import ConfigError, HptuneError, Trial, choice, create_study, load_study
from tests.integrations._extras import import_or_skip
from tests.integrations.objectives import (
    lightning_module,
    lightning_objective,
    lightning_trainer,
    loaders,
)

import_or_skip("lightning")
from hptune.integrations.lightning import PruningCallback, configure_optimizers  # noqa: E402

# 5 training batches per epoch; with accumulate_grad_batches=2 that is 3 optimizer steps
# (Lightning steps on an epoch's last, short window too).


def cosine_after_warmup(k: int, lr: float, warmup: int, total: int) -> float:
    """The LR of optimizer step k (0-based): linear from 0, then cosine to 0 at ``total``."""
    if k < warmup:
        return lr * k / warmup
    return lr * (1 + math.cos(math.pi * (k - warmup) / (total - warmup))) / 2


@pytest.mark.parametrize("warmup", [{"warmup_steps": 4}, {"warmup_epochs": 1}])
def test_warmup_then_cosine_lr_at_every_optimizer_step_with_accumulation(warmup):
    config = {"lr": 0.1, "optimizer": "sgd", "scheduler": "cosine", **warmup}
    module = lightning_module(config)
    lightning_trainer([], max_epochs=3, accumulate_grad_batches=2).fit(module, *loaders())
    n_warmup = warmup.get("warmup_steps", 3)  # one epoch is 3 optimizer steps
    expected = [cosine_after_warmup(k, 0.1, n_warmup, 9) for k in range(9)]
    assert module.lrs == pytest.approx(expected, abs=1e-12)


def test_plateau_behind_warmup_counts_only_validations_after_warmup():
    # val_loss is constant, so a plateau with patience 0 halves the LR at every validation
    # after its first. Warmup takes 7 steps: epoch 1's validation falls inside it and is
    # not counted, epoch 2's is the plateau's first, epoch 3's halves the LR.
    config = {
        "lr": 0.1,
        "optimizer": "sgd",
        "warmup_steps": 7,
        "scheduler": {"name": "plateau", "patience": 0, "factor": 0.5},
    }
    module = lightning_module(config, val_loss=1.0)
    lightning_trainer([], max_epochs=4).fit(module, *loaders())
    warmup = [0.1 * k / 7 for k in range(7)]
    assert module.lrs == pytest.approx(warmup + [0.1] * 8 + [0.05] * 5, abs=1e-12)


def test_plateau_entry_follows_the_monitor_once_per_epoch():
    config = {"lr": 0.1, "scheduler": "plateau"}
    _, (step, plateau) = configure_optimizers(
        lightning_module(config), config, monitor="val_loss", direction="minimize", total_steps=10
    )
    assert step["interval"] == "step" and step["frequency"] == 1 and "monitor" not in step
    assert plateau["scheduler"] is step["scheduler"]
    assert (plateau["interval"], plateau["reduce_on_plateau"], plateau["monitor"]) == (
        "epoch", True, "val_loss",
    )  # fmt: skip
    assert plateau["scheduler"].after.mode == "min"


def test_plateau_needs_a_monitor_and_a_direction():
    config = {"lr": 0.1, "scheduler": "plateau"}
    module = lightning_module(config)
    with pytest.raises(ConfigError, match="pass monitor='val_loss'"):
        configure_optimizers(module, config, direction="minimize", total_steps=10)
    with pytest.raises(ConfigError, match=re.escape("pass direction='minimize' (a loss)")):
        configure_optimizers(module, config, monitor="val_loss", total_steps=10)


def test_no_decay_on_biases_and_norms_and_decay_map_first_match_wins():
    config = {"optimizer": "adamw", "weight_decay": 0.01, "decay_map": {"net.3.*": 0.1}}
    (optimizer,), _ = configure_optimizers(lightning_module(config), config, total_steps=10)
    groups = [(g["weight_decay"], g["param_names"]) for g in optimizer.param_groups]
    assert groups == [
        (0.01, ["net.0.weight"]),
        (0.1, ["net.3.weight"]),
        (0.0, ["net.0.bias", "net.1.weight", "net.1.bias", "net.3.bias"]),
    ]
    assert type(optimizer).__name__ == "AdamW" and optimizer.param_groups[0]["lr"] == 1e-3


def test_pruned_trial_stops_after_the_epoch_and_raises_after_fit():
    pruned_at = []
    trial = Trial(0, {}, seed=0, reporter=lambda step, value: pruned_at.append(step) or True)
    module = lightning_module({"lr": 0.05})
    pruning = PruningCallback(trial, monitor="val_acc")
    trainer = lightning_trainer([pruning], max_epochs=3)
    trainer.fit(module, *loaders())  # returns: the stop went through Lightning's own flag
    assert pruned_at == [1] and trainer.current_epoch == 1 and len(module.lrs) == 5
    assert trainer.state.status == "finished" and pruning.pruned
    with pytest.raises(HptuneError, match="pruned at step 1"):
        pruning.raise_if_pruned()


def test_sanity_check_and_validate_outside_fit_are_not_reported():
    steps = []
    trial = Trial(0, {}, seed=0, reporter=lambda step, value: steps.append(step) or False)
    module, pruning = lightning_module({}), PruningCallback(trial, monitor="val_acc")
    trainer = lightning_trainer([pruning], max_epochs=2)  # one sanity-check batch
    trainer.fit(module, *loaders())
    trainer.validate(module, loaders()[1], verbose=False)
    assert steps == [1, 2] and list(pruning.values) == [1, 2]


def test_missing_monitor_is_a_one_line_error_naming_the_logged_keys():
    pruning = PruningCallback(None, monitor="val_accuracy")
    with pytest.raises(ConfigError) as caught:
        lightning_trainer([pruning], max_epochs=1).fit(lightning_module({}), *loaders())
    message = str(caught.value)
    assert "metric 'val_accuracy' was not logged (present: val_acc, val_loss)" in message
    assert "\n" not in message


def test_two_validations_in_one_epoch_need_step_global_step():
    pruning = PruningCallback(None, monitor="val_acc")
    trainer = lightning_trainer([pruning], max_epochs=1, val_check_interval=0.4)
    with pytest.raises(ConfigError, match=re.escape("step='global_step'")):
        trainer.fit(lightning_module({}), *loaders())
    by_step = PruningCallback(None, monitor="val_acc", step="global_step")
    trainer = lightning_trainer([by_step], max_epochs=1, val_check_interval=0.4)
    trainer.fit(lightning_module({}), *loaders())
    assert list(by_step.values) == [2, 4]


def test_callback_refuses_a_process_other_than_its_own():
    pruning = PruningCallback(Trial(0, {}, seed=0), monitor="val_acc")
    pruning._pid = -1  # as if pickled into a ddp_spawn child
    with pytest.raises(HptuneError, match="Train each trial on one device"):
        pruning.on_fit_start(None, None)


@pytest.mark.slow
def test_study_in_two_deterministic_workers_records_pruned_trials(tmp_path):
    url = f"sqlite:///{tmp_path / 'l.db'}"
    space = {"lr": choice(0.05, 0.03, 1e-6, 2e-6), "optimizer": "adam", "warmup_steps": 2,
             "scheduler": "cosine"}  # fmt: skip
    study = create_study(space, name="l", storage=url, strategy="grid", pruner="median",
                         strategy_options={"shuffle": False},
                         pruner_options={"n_startup_trials": 1, "n_warmup_steps": 0},
                         epochs=3, seed=0, direction="maximize")  # fmt: skip
    study.optimize(
        "tests.integrations.objectives:lightning_objective",
        n_trials=4,
        n_workers=2,
        deterministic=True,
        batch_size=2,  # trials 2 and 3 are judged against the finished trials 0 and 1
    )
    trials = load_study("l", url).trials
    assert [(t.config["lr"], t.state) for t in trials] == [
        (0.05, "COMPLETE"), (0.03, "COMPLETE"), (1e-6, "PRUNED"), (2e-6, "PRUNED"),
    ]  # fmt: skip
    for t in trials[:2]:
        assert list(t.intermediate_values) == [1, 2, 3] and t.attrs["epochs_run"] == 3
        assert t.value == max(t.intermediate_values.values())
        lr = t.config["lr"]
        assert t.attrs["lrs"][:3] == pytest.approx([0.0, lr / 2, lr])  # 2 steps of warmup
    for t in trials[2:]:  # stopped cleanly after epoch 1: one epoch's 5 steps
        assert list(t.intermediate_values) == [1] and t.attrs["epochs_run"] == 1
        assert len(t.attrs["lrs"]) == 5
    # The same config and seed in this process give the stored loss, bit for bit; another
    # seed another loss.
    first = trials[0]
    for seed in (first.seed, first.seed + 1):
        rerun = Trial(0, first.config, seed)
        lightning_objective(first.config, rerun)
        assert (rerun.attrs["val_loss"] == first.attrs["val_loss"]) == (seed == first.seed)
