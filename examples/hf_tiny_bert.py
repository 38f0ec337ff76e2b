"""Tune a Hugging Face ``transformers.Trainer`` run with hptune: TPE + Hyperband over the LR,
warmup, schedule (linear, cosine, or a plateau on the validation accuracy) and weight decay
of a 2-layer BERT built from a config (nothing is downloaded), in two worker processes.

The task is made up and small enough for a CPU: sequences of 12 random tokens, labelled by
whether token 3 occurs in them, which takes attention to find.

Run it from the repository root::

    pip install -c constraints.txt -e ".[transformers]"
    python examples/hf_tiny_bert.py

The study goes to ``sqlite:///hptune.db`` under the name ``hf-tiny-bert``, so
``hptune status hf-tiny-bert`` and the other commands read it afterwards; running the
script again continues the study.

What the integration does here: ``create_optimizer_and_scheduler`` turns the trial's
config into the optimizer (no weight decay on biases and LayerNorm) and the warmup +
scheduler, passed to ``Trainer(optimizers=...)``, which steps it once per optimizer step;
``PruningCallback`` reports ``eval_accuracy`` each epoch, feeds it to a plateau scheduler,
and stops the trials Hyperband prunes, which raise ``TrialPruned`` after ``train()`` and
are recorded PRUNED.
"""

from __future__ import annotations

import math
import tempfile
from typing import Any

import torch
from torch.utils.data import Dataset
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    PrinterCallback,
    Trainer,
    TrainingArguments,
    set_seed,
)
from transformers.utils import logging as hf_logging

import hptune
from hptune.integrations.transformers import PruningCallback, create_optimizer_and_scheduler

EPOCHS, BATCH_SIZE, VOCAB, LENGTH, MARKER = 6, 32, 32, 12, 3

SPACE = {
    "lr": hptune.loguniform(1e-4, 3e-2),
    "weight_decay": hptune.loguniform(1e-5, 1e-1),
    "warmup_steps": hptune.choice(0, 20, 50),
    "optimizer": "adamw",
    "scheduler": hptune.choice(
        {"linear": {}, "cosine": {}, "plateau": {"factor": 0.5, "patience": 1}}
    ),
}


class MarkerTokens(Dataset):
    """``n`` sequences of random tokens; half contain ``MARKER`` somewhere (label 1)."""

    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        ids = torch.randint(MARKER + 1, VOCAB, (n, LENGTH), generator=g)
        self.labels = torch.arange(n) % 2
        where = torch.randint(0, LENGTH, (n,), generator=g)
        ids[self.labels == 1, where[self.labels == 1]] = MARKER
        self.ids = ids

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[i], "labels": self.labels[i]}


def accuracy(prediction: Any) -> dict[str, float]:
    return {"accuracy": float((prediction.predictions.argmax(-1) == prediction.label_ids).mean())}


def objective(config: dict[str, Any], trial: hptune.Trial) -> float:
    """Train one config; return its best validation accuracy."""
    hf_logging.set_verbosity_error()
    set_seed(trial.seed)
    model = BertForSequenceClassification(
        BertConfig(
            vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=64, max_position_embeddings=LENGTH, num_labels=2,
        )
    )  # fmt: skip
    train, val = MarkerTokens(1024, seed=0), MarkerTokens(256, seed=1)
    steps_per_epoch = math.ceil(len(train) / BATCH_SIZE)
    optimizer, scheduler = create_optimizer_and_scheduler(
        model, config, num_training_steps=EPOCHS * steps_per_epoch,
        steps_per_epoch=steps_per_epoch, direction="maximize",  # the plateau follows accuracy
    )  # fmt: skip
    pruning = PruningCallback(trial, metric="eval_accuracy")
    with tempfile.TemporaryDirectory() as output_dir:
        args = TrainingArguments(
            output_dir=output_dir, num_train_epochs=EPOCHS, per_device_train_batch_size=BATCH_SIZE,
            eval_strategy="epoch", save_strategy="no", logging_strategy="no", report_to="none",
            use_cpu=True, disable_tqdm=True, seed=trial.seed,
        )  # fmt: skip
        trainer = Trainer(
            model=model, args=args, train_dataset=train, eval_dataset=val,
            compute_metrics=accuracy, optimizers=(optimizer, scheduler), callbacks=[pruning],
        )  # fmt: skip
        trainer.remove_callback(PrinterCallback)
        trainer.train()
    pruning.raise_if_pruned()  # a pruned trial is recorded PRUNED, not COMPLETE
    return max(pruning.values.values())


def main() -> None:
    study = hptune.create_study(
        SPACE, name="hf-tiny-bert", storage="sqlite:///hptune.db", load_if_exists=True,
        direction="maximize", strategy="tpe", pruner="hyperband", epochs=EPOCHS, seed=0,
    )  # fmt: skip
    study.optimize(objective, n_trials=12, n_workers=2, deterministic=True)
    states = [t.state for t in study.trials]
    print(f"{states.count('COMPLETE')} complete, {states.count('PRUNED')} pruned")
    print(f"best eval_accuracy {study.best_value:.3f} with {study.best_config}")


if __name__ == "__main__":
    main()
