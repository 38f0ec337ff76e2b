"""hptune.integrations.transformers with transformers.Trainer training a 2-layer BERT built
from a config (no download) on random tokens."""

from __future__ import annotations

import math
import warnings

import pytest

from hptune import ConfigError, HptuneError, Trial, choice, create_study, load_study
from tests.integrations._extras import import_or_skip
from tests.integrations.objectives import hf_trainer, tiny_bert

transformers = import_or_skip("transformers")
import_or_skip("accelerate")
from hptune.integrations.transformers import (  # noqa: E402
    PruningCallback,
    create_optimizer_and_scheduler,
)

# 40 training samples in batches of 8: 5 batches per epoch; with
# gradient_accumulation_steps=2 that is 3 optimizer steps (the last one on 1 batch).


class RecordLR(transformers.TrainerCallback):
    """The LR of every optimizer step: on_optimizer_step runs after optimizer.step() and
    before the Trainer steps the scheduler."""

    def __init__(self) -> None:
        self.lrs: list[float] = []

    def on_optimizer_step(self, args, state, control, optimizer=None, **kwargs):
        self.lrs.append(float(optimizer.param_groups[0]["lr"]))


def constant_metric(prediction) -> dict[str, float]:
    return {"const": 1.0}  # never improves: a plateau with patience 0 halves at each eval


def test_warmup_then_cosine_lr_at_every_optimizer_step_with_accumulation(tmp_path):
    model = tiny_bert(0)
    config = {"lr": 0.1, "optimizer": "sgd", "warmup_steps": 4, "scheduler": "cosine"}
    optimizers = create_optimizer_and_scheduler(model, config, num_training_steps=9)
    record = RecordLR()
    trainer = hf_trainer(model, str(tmp_path), [record], optimizers, gradient_accumulation_steps=2)
    trainer.train()
    cosine = [0.1 * (1 + math.cos(math.pi * k / 5)) / 2 for k in range(5)]
    assert record.lrs == pytest.approx([0.0, 0.025, 0.05, 0.075, *cosine], abs=1e-12)


def test_plateau_behind_warmup_is_fed_at_evaluations_after_warmup_only(tmp_path):
    # Warmup takes 7 of the 5-per-epoch steps: epoch 1's evaluation falls inside it and is
    # not counted, epoch 2's is the plateau's first, epoch 3's halves the LR.
    model = tiny_bert(0)
    config = {
        "lr": 0.1,
        "optimizer": "sgd",
        "warmup_steps": 7,
        "scheduler": {"name": "plateau", "patience": 0, "factor": 0.5},
    }
    optimizers = create_optimizer_and_scheduler(
        model, config, num_training_steps=20, direction="minimize"
    )
    record, feed = RecordLR(), PruningCallback(None, metric="const")
    trainer = hf_trainer(model, str(tmp_path), [record, feed], optimizers, num_train_epochs=4)
    trainer.compute_metrics = constant_metric
    trainer.train()
    warmup = [0.1 * k / 7 for k in range(7)]
    assert record.lrs == pytest.approx(warmup + [0.1] * 8 + [0.05] * 5, abs=1e-12)
    assert list(feed.values) == [1, 2, 3, 4]
    trainer.evaluate()  # after train(): neither recorded nor fed to the plateau
    assert (
        list(feed.values) == [1, 2, 3, 4] and optimizers[1].after.last_epoch == 3
    )  # evaluations 2, 3, 4


def test_plateau_without_the_callback_refuses_to_start(tmp_path):
    model = tiny_bert(0)
    config = {"lr": 0.1, "scheduler": "plateau"}
    optimizers = create_optimizer_and_scheduler(
        model, config, num_training_steps=15, direction="minimize"
    )
    trainer = hf_trainer(model, str(tmp_path), [], optimizers)
    with pytest.raises(HptuneError, match=r"add callbacks=\[PruningCallback"):
        trainer.train()


def test_callback_warns_when_the_trainer_takes_other_than_the_sized_steps():
    _, scheduler = create_optimizer_and_scheduler(tiny_bert(0), {}, num_training_steps=10)
    callback, state = PruningCallback(None), transformers.TrainerState(max_steps=15)
    with pytest.warns(UserWarning, match="pass num_training_steps=15"):
        callback.on_train_begin(None, state, None, lr_scheduler=scheduler)
    state.max_steps = 10
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        callback.on_train_begin(None, state, None, lr_scheduler=scheduler)


def test_no_decay_on_biases_and_layer_norms():
    model = tiny_bert(0)
    config = {"optimizer": "adamw", "weight_decay": 0.01, "decay_map": {"classifier.*": 0.1}}
    optimizer, _ = create_optimizer_and_scheduler(model, config, num_training_steps=10)
    decayed, classifier, undecayed = optimizer.param_groups
    assert (decayed["weight_decay"], classifier["weight_decay"]) == (0.01, 0.1)
    assert classifier["param_names"] == ["classifier.weight"]
    assert undecayed["weight_decay"] == 0.0
    assert all(n.endswith("bias") or "LayerNorm" in n for n in undecayed["param_names"])
    assert "bert.embeddings.word_embeddings.weight" in decayed["param_names"]


def test_pruned_trial_stops_after_the_epoch_and_raises_after_train(tmp_path):
    trial = Trial(0, {}, seed=0, reporter=lambda step, value: True)
    model = tiny_bert(0)
    pruning = PruningCallback(trial, metric="eval_accuracy")
    optimizers = create_optimizer_and_scheduler(model, {"lr": 1e-3}, num_training_steps=15)
    trainer = hf_trainer(model, str(tmp_path), [pruning], optimizers)
    trainer.train()  # returns: the stop went through the Trainer's own flag
    assert trainer.state.global_step == 5 and list(pruning.values) == [1]
    with pytest.raises(HptuneError, match="pruned at step 1"):
        pruning.raise_if_pruned()


def test_missing_metric_is_a_one_line_error_naming_the_metrics(tmp_path):
    model = tiny_bert(0)
    optimizers = create_optimizer_and_scheduler(model, {}, num_training_steps=15)
    trainer = hf_trainer(model, str(tmp_path), [PruningCallback(None, "f1")], optimizers)
    with pytest.raises(ConfigError) as caught:
        trainer.train()
    message = str(caught.value)
    assert "PruningCallback: metric 'eval_f1' was not logged (present: " in message
    assert "eval_accuracy, eval_loss, " in message and message.endswith("compute_metrics.")
    assert "\n" not in message


@pytest.mark.slow
def test_study_in_two_deterministic_workers_records_pruned_trials(tmp_path):
    url = f"sqlite:///{tmp_path / 'hf.db'}"
    space = {"lr": choice(3e-3, 1e-2, 1e-6, 2e-6), "optimizer": "adam", "warmup_steps": 2,
             "scheduler": "linear"}  # fmt: skip
    study = create_study(space, name="hf", storage=url, strategy="grid", pruner="median",
                         strategy_options={"shuffle": False},
                         pruner_options={"n_startup_trials": 1, "n_warmup_steps": 0},
                         epochs=3, seed=0, direction="maximize")  # fmt: skip
    study.optimize(
        "tests.integrations.objectives:hf_objective",
        n_trials=4,
        n_workers=2,
        deterministic=True,
        batch_size=2,  # trials 2 and 3 are judged against the finished trials 0 and 1
    )
    trials = load_study("hf", url).trials
    assert [(t.config["lr"], t.state) for t in trials] == [
        (3e-3, "COMPLETE"), (1e-2, "COMPLETE"), (1e-6, "PRUNED"), (2e-6, "PRUNED"),
    ]  # fmt: skip
    for t in trials[:2]:
        assert list(t.intermediate_values) == [1, 2, 3] and t.attrs["epochs_run"] == 3
        assert t.value == max(t.intermediate_values.values())
    for t in trials[2:]:
        assert list(t.intermediate_values) == [1] and t.attrs["epochs_run"] == 1
