"""Tiny models, data and objectives for the integration tests.

The objectives are module-level so that hptune's spawned worker processes can import them
(``"tests.integrations.objectives:lightning_objective"``). Everything is small enough for a
fit to take about a second on one CPU thread: a linear problem the model learns within an
epoch at a good LR, and does not at LR 1e-6, so a pruner has something to see.
"""

from __future__ import annotations

import tempfile
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

N_TRAIN, N_VAL, BATCH = 40, 40, 8  # 5 batches per epoch


def blobs(n: int, seed: int, dim: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """Points whose label is the sign of their first coordinate, with a margin."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=g)
    x[:, 0] += torch.where(x[:, 0] > 0, 1.0, -1.0)
    return x, (x[:, 0] > 0).long()


# --- Lightning -----------------------------------------------------------------------------


def lightning_module(config: dict[str, Any], *, val_loss: float | None = None) -> Any:
    """A LightningModule with a LayerNorm (for the no-decay groups) that logs ``val_loss``
    (or the constant ``val_loss``, for a plateau that never improves) and ``val_acc``, and
    records the LR of every optimizer step in ``lrs``."""
    import lightning

    from hptune.integrations.lightning import configure_optimizers

    class Module(lightning.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.ReLU(), nn.Linear(8, 2))
            self.lrs: list[float] = []

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            x, y = batch
            return nn.functional.cross_entropy(self.net(x), y)

        def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
            self.lrs.append(float(optimizer.param_groups[0]["lr"]))  # this step's LR

        def validation_step(self, batch: Any, batch_idx: int) -> None:
            x, y = batch
            logits = self.net(x)
            loss = nn.functional.cross_entropy(logits, y)
            self.log("val_loss", loss if val_loss is None else torch.tensor(val_loss))
            self.log("val_acc", (logits.argmax(1) == y).float().mean())

        def configure_optimizers(self) -> Any:
            return configure_optimizers(self, config, monitor="val_loss", direction="minimize")

    return Module()


def lightning_trainer(callbacks: list[Any], max_epochs: int = 3, **options: Any) -> Any:
    import lightning

    options.setdefault("deterministic", True)
    return lightning.Trainer(
        max_epochs=max_epochs,
        callbacks=callbacks,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=1,
        **options,
    )


def loaders(batch_size: int = BATCH) -> tuple[DataLoader, DataLoader]:
    train, val = TensorDataset(*blobs(N_TRAIN, 0)), TensorDataset(*blobs(N_VAL, 1))
    g = torch.Generator().manual_seed(0)
    return DataLoader(train, batch_size, shuffle=True, generator=g), DataLoader(val, N_VAL)


def lightning_objective(config: dict[str, Any], trial: Any) -> float:
    """An hptune objective training with Lightning: seeded by the trial, pruned by it."""
    import lightning

    from hptune.integrations.lightning import PruningCallback

    lightning.seed_everything(trial.seed, verbose=False)
    module = lightning_module(config)
    pruning = PruningCallback(trial, monitor="val_acc")
    trainer = lightning_trainer([pruning], max_epochs=3)
    trainer.fit(module, *loaders())
    trial.set_attr("epochs_run", trainer.current_epoch)
    trial.set_attr("lrs", module.lrs)
    trial.set_attr("val_loss", float(trainer.callback_metrics["val_loss"]))
    pruning.raise_if_pruned()
    return max(pruning.values.values())


# --- transformers --------------------------------------------------------------------------


class Tokens(Dataset):
    """Random token sequences; the label says whether the first token is in the upper half
    of the vocabulary."""

    def __init__(self, n: int, seed: int, vocab: int = 32, length: int = 8) -> None:
        g = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(1, vocab, (n, length), generator=g)
        self.labels = (self.ids[:, 0] >= vocab // 2).long()

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[i], "labels": self.labels[i]}


def tiny_bert(seed: int) -> Any:
    """A 2-layer BERT classifier built from a config (no download), seeded."""
    from transformers import BertConfig, BertForSequenceClassification, set_seed

    set_seed(seed)
    config = BertConfig(
        vocab_size=32, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=16, num_labels=2,
    )  # fmt: skip
    return BertForSequenceClassification(config)


def accuracy(prediction: Any) -> dict[str, float]:
    return {"accuracy": float((prediction.predictions.argmax(-1) == prediction.label_ids).mean())}


def hf_trainer(model: Any, output_dir: str, callbacks: list[Any], optimizers: Any, **args: Any):
    """A Trainer on :class:`Tokens`: 40 training samples in batches of 8 (5 per epoch)."""
    from transformers import PrinterCallback, Trainer, TrainingArguments

    args = {"num_train_epochs": 3, "per_device_train_batch_size": BATCH, **args}
    training_args = TrainingArguments(
        output_dir=output_dir, eval_strategy="epoch", save_strategy="no", report_to="none",
        logging_strategy="no", use_cpu=True, disable_tqdm=True, seed=0, **args,
    )  # fmt: skip
    trainer = Trainer(
        model=model, args=training_args, train_dataset=Tokens(N_TRAIN, 0),
        eval_dataset=Tokens(N_VAL, 1), compute_metrics=accuracy, optimizers=optimizers,
        callbacks=callbacks,
    )  # fmt: skip
    trainer.remove_callback(PrinterCallback)  # quiet: it prints every evaluation
    return trainer


def hf_objective(config: dict[str, Any], trial: Any) -> float:
    """An hptune objective training a tiny BERT with transformers.Trainer."""
    from hptune.integrations.transformers import PruningCallback, create_optimizer_and_scheduler

    model = tiny_bert(trial.seed)
    optimizer, scheduler = create_optimizer_and_scheduler(
        model, config, num_training_steps=15, steps_per_epoch=5, direction="maximize"
    )
    pruning = PruningCallback(trial, metric="accuracy")
    with tempfile.TemporaryDirectory() as output_dir:
        trainer = hf_trainer(model, output_dir, [pruning], (optimizer, scheduler))
        trainer.train()
    trial.set_attr("epochs_run", round(trainer.state.epoch))
    pruning.raise_if_pruned()
    return max(pruning.values.values())
