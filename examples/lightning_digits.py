"""Tune a PyTorch Lightning model with hptune: TPE + Hyperband over the LR, its warmup and
schedule (cosine, or a plateau on the validation loss), weight decay, optimizer and batch
size, on scikit-learn's digits (bundled with scikit-learn; nothing is downloaded), in two
worker processes with deterministic scheduling.

Run it from the repository root::

    pip install -c constraints.txt -e ".[lightning,data]"
    python examples/lightning_digits.py

The study goes to ``sqlite:///hptune.db`` under the name ``lightning-digits``, so
``hptune status lightning-digits`` and the other commands read it afterwards; running the
script again continues the study.

What the integration does here: ``configure_optimizers(self, config, ...)`` turns the
trial's config into the optimizer (no weight decay on biases) and the warmup + scheduler
that Lightning steps once per optimizer step (a plateau gets ``val_loss`` after each
epoch); ``PruningCallback`` reports ``val_acc`` each epoch and stops the trials Hyperband
prunes, which then raise ``TrialPruned`` after ``fit`` and are recorded PRUNED.
"""

from __future__ import annotations

import logging
from typing import Any

import lightning
import torch
from torch import nn
from torch.utils.data import DataLoader

import hptune
from hptune.integrations.lightning import PruningCallback, configure_optimizers
from hptune.tasks import MLP, load_digits

EPOCHS = 10

SPACE = {
    "lr": hptune.loguniform(1e-4, 3e-1),
    "batch_size": hptune.choice(32, 64, 128),
    "weight_decay": hptune.loguniform(1e-6, 1e-2),
    "warmup_epochs": hptune.randint(0, 2),
    "optimizer": hptune.choice({"adamw": {}, "sgd": {"momentum": hptune.uniform(0.8, 0.99)}}),
    "scheduler": hptune.choice({"cosine": {}, "plateau": {"factor": 0.5, "patience": 1}}),
}


class DigitsClassifier(lightning.LightningModule):
    """An MLP on 8x8 digits that logs ``val_loss`` and ``val_acc`` each epoch."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.config = config
        self.net = MLP(64, 10, width=128, depth=1)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return nn.functional.cross_entropy(self.net(x), y)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        logits = self.net(x)
        self.log("val_loss", nn.functional.cross_entropy(logits, y))
        self.log("val_acc", (logits.argmax(dim=1) == y).float().mean())

    def configure_optimizers(self) -> Any:
        # The plateau (when the config picks it) follows val_loss, which should fall.
        return configure_optimizers(self, self.config, monitor="val_loss", direction="minimize")


def objective(config: dict[str, Any], trial: hptune.Trial) -> float:
    """Train one config; return its best validation accuracy."""
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)  # no banner per trial
    lightning.seed_everything(trial.seed, verbose=False)
    data = load_digits()
    generator = torch.Generator().manual_seed(trial.seed)
    train = DataLoader(data.train, config["batch_size"], shuffle=True, generator=generator)
    val = DataLoader(data.val, batch_size=len(data.val))
    pruning = PruningCallback(trial, monitor="val_acc")
    trainer = lightning.Trainer(
        max_epochs=EPOCHS, callbacks=[pruning], accelerator="cpu", devices=1,
        deterministic=True, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(DigitsClassifier(config), train, val)
    pruning.raise_if_pruned()  # a pruned trial is recorded PRUNED, not COMPLETE
    return max(pruning.values.values())


def main() -> None:
    study = hptune.create_study(
        SPACE, name="lightning-digits", storage="sqlite:///hptune.db", load_if_exists=True,
        direction="maximize", strategy="tpe", pruner="hyperband", epochs=EPOCHS, seed=0,
    )  # fmt: skip
    study.optimize(objective, n_trials=20, n_workers=2, deterministic=True)
    states = [t.state for t in study.trials]
    print(f"{states.count('COMPLETE')} complete, {states.count('PRUNED')} pruned")
    print(f"best val_acc {study.best_value:.3f} with {study.best_config}")


if __name__ == "__main__":
    main()
