"""The final model: train the best config of a study once more and save the weights with
the config that made them.

A study keeps configs and results, not models (``training.save_best`` keeps each trial's
best weights, which costs disk for every trial). :func:`train_best` trains the best trial's
config with the recipe, the study's task and ``training:`` options, and writes
``model.pt`` (the model's ``state_dict``) and ``config.yaml`` (what the model is: study,
trial, task, config, seed, epochs, data, metrics) into one folder; :func:`load_trained`
builds the model back from that folder.

What is trained on, and which weights are kept:

* ``train_on="train"`` (default): the trial again. With its seed, epochs and thread count
  the run is the trial's own (on the CPU bit for bit: the saved weights are those the trial
  scored, and ``val_<metric>`` equals its value). The weights of the best epoch by the
  validation metric are kept, as the trial's result was.
* ``train_on="train+val"``: the train and validation splits together, so the model learns
  from every labelled sample the search did not hold out for testing. Nothing is left to
  choose an epoch on, so the **last** epoch's weights are kept: pick ``epochs`` with that in
  mind (the trial's ``best_epoch`` is in ``config.yaml``; the default is the study's epochs,
  the schedule the config was tuned with). The validation split is still measured each epoch
  but is now training data (its numbers are in-sample, and a plateau scheduler reads them);
  the test split, never used for tuning, gives the model's score.

Only a task the recipe trains (a model and data, :class:`hptune.tasks.Task`) can be trained
here; a full objective ``(config, trial) -> float`` keeps its model to itself.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import yaml

from hptune._checks import Int, OneOf, check, optional
from hptune._paths import file_name
from hptune.exceptions import HptuneError
from hptune.runner._base import OUTPUT_DIR, stored_spec
from hptune.study import Study

#: What a final model may be trained on.
TRAIN_ON = ("train", "train+val")
WEIGHTS, CONFIG = "model.pt", "config.yaml"


@dataclasses.dataclass(frozen=True)
class TrainedModel:
    """What :func:`train_best` saved.

    Args:
        folder: Where ``model.pt`` and ``config.yaml`` are.
        info: The contents of ``config.yaml``: ``study``, ``trial``, ``task``, ``config``,
            ``seed``, ``epochs``, ``train_on``, ``weights`` (``"best epoch N"`` or ``"last
            epoch"``), ``metrics`` (the kept weights' test figures, and their validation
            ones on ``train``: on ``train+val`` they would be in-sample) and ``trial_value``
            (what the trial scored).
    """

    folder: Path
    info: dict[str, Any]

    @property
    def weights(self) -> Path:
        return self.folder / WEIGHTS


def default_folder(study: Study) -> Path:
    """``hptune-out/<study>/best-model``: where ``hptune train-best`` saves by default."""
    return Path(OUTPUT_DIR) / file_name(study.name) / "best-model"


def check_train_best(epochs: int | None, train_on: str, seed: int | None) -> None:
    """Raise ConfigError for a bad :func:`train_best` argument (the CLI asks before it says
    it trains)."""
    check("train_best: epochs", epochs, optional(Int(low=1)))
    check("train_best: train_on", train_on, OneOf(TRAIN_ON))
    check("train_best: seed", seed, optional(Int(low=0)))


def train_best(
    study: Study,
    folder: str | Path | None = None,
    *,
    epochs: int | None = None,
    train_on: str = "train",
    seed: int | None = None,
) -> TrainedModel:
    """Train the best trial's config of ``study`` (run from a spec) and save the model.

    Args:
        study: A study run from a spec whose task the recipe trains.
        folder: Where to write ``model.pt`` and ``config.yaml`` (made if missing);
            default :func:`default_folder`.
        epochs: Epochs to train; default the study's (``budget.epochs``, else the task's).
        train_on: ``"train"`` (the trial again, best epoch kept) or ``"train+val"`` (both
            splits, last epoch kept); see the module docstring.
        seed: The training seed; default the best trial's.

    Raises:
        HptuneError: No spec, a full-objective task, or no completed trial.
        ConfigError: A bad ``epochs``, ``train_on`` or ``seed``.

    Example:
        >>> saved = train_best(load_study("digits", storage), "final")  # doctest: +SKIP
        >>> model, info = load_trained("final")  # doctest: +SKIP
    """
    from hptune.tasks import Task, resolve_task

    check_train_best(epochs, train_on, seed)
    try:
        spec = stored_spec(study)
    except HptuneError:
        raise HptuneError(
            f"study {study.name!r} was not run from a spec, so hptune does not know its model "
            "or data; train study.best_config (seed study.best_trial.seed) in your own code."
        ) from None
    task = resolve_task(spec.task)
    if not isinstance(task, Task):
        raise HptuneError(
            f"task {spec.task!r} of study {study.name!r} is a full objective (config, trial) "
            "-> float, whose model hptune never sees; train study.best_config in your own "
            "code, or make the task a Task so that the recipe trains it."
        )
    best = study.best_trial
    seed = best.seed if seed is None else seed
    epochs = epochs or spec.budget.epochs or task.default_epochs
    folder = Path(default_folder(study) if folder is None else folder)
    folder.mkdir(parents=True, exist_ok=True)
    data = task.datasets()
    if train_on == "train+val":
        data = dataclasses.replace(data, train=_joined(data.train, data.val))
    kept = "best" if train_on == "train" else "last"
    metrics, weights = _train(best, task, spec, epochs, seed, data, kept, folder / WEIGHTS)
    info = {
        "study": study.name,
        "trial": best.number,
        "trial_value": best.value,
        "task": spec.task,
        "metric": spec.metric,
        "seed": seed,
        "epochs": epochs,
        "train_on": train_on,
        "train_samples": len(data.train),
        "weights": weights,
        "metrics": metrics,
        "trial_best_epoch": best.attrs.get("best_epoch"),
        "config": best.config,
    }
    (folder / CONFIG).write_text(yaml.safe_dump(info, sort_keys=False))
    return TrainedModel(folder, info)


def _train(
    best: Any, task: Any, spec: Any, epochs: int, seed: int, data: Any, kept: str, path: Path
) -> tuple[dict[str, float], str]:
    """Train on ``data`` and save the ``kept`` (``"best"`` or ``"last"``) epoch's weights
    at ``path``; returns their metrics and which weights they are, in words."""
    import torch

    from hptune.training import evaluate, train

    with _threads((best.runtime or {}).get("threads")):
        result = train(
            best.config, task, epochs=epochs, seed=seed, metric=spec.metric, data=data,
            options=spec.training, save_path=path if kept == "best" else None,
        )  # fmt: skip
        if kept == "best":
            attrs = result.attrs
            keys = ("val_accuracy", "val_loss", "test_accuracy", "test_loss")
            return {k: float(attrs[k]) for k in keys}, f"best epoch {attrs['best_epoch']}"
        model = result.model
        state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        torch.save(state, path)
        device = next(model.parameters()).device
        test_loss, test_accuracy = evaluate(model, data.test, task.loss_fn, device, False)
    # No validation figures: the val split was trained on, so they would be in-sample.
    metrics = {"test_accuracy": test_accuracy, "test_loss": test_loss}
    return {k: float(v) for k, v in metrics.items() if math.isfinite(v)}, "last epoch"


def _joined(train: Any, val: Any) -> Any:
    """The train and validation splits as one data set (a ``TensorDataset`` when both are,
    so the recipe keeps its fast batching)."""
    from torch import cat
    from torch.utils.data import ConcatDataset, TensorDataset

    if isinstance(train, TensorDataset) and isinstance(val, TensorDataset):
        return TensorDataset(*(cat([a, b]) for a, b in zip(train.tensors, val.tensors)))
    return ConcatDataset([train, val])


class _threads:
    """Run with the torch threads the trial ran with (a float sum's last bits depend on
    them, see ``execution/_environment.py``), the caller's restored afterwards."""

    def __init__(self, threads: int | None) -> None:
        self.threads, self.before = threads, None

    def __enter__(self) -> None:
        import torch

        self.before = torch.get_num_threads()
        if self.threads is not None:
            torch.set_num_threads(self.threads)

    def __exit__(self, *exc: object) -> None:
        import torch

        torch.set_num_threads(self.before)


def load_trained(folder: str | Path) -> tuple[Any, dict[str, Any]]:
    """The model :func:`train_best` saved in ``folder``, with its weights, and the contents
    of its ``config.yaml``: ``task.build_model(config)`` + ``load_state_dict``.

    Raises:
        HptuneError: ``folder`` lacks ``model.pt`` or ``config.yaml``.
    """
    import torch

    from hptune.tasks import resolve_task

    folder = Path(folder)
    missing = [n for n in (WEIGHTS, CONFIG) if not (folder / n).is_file()]
    if missing:
        raise HptuneError(
            f"{folder} lacks {' and '.join(missing)}; give the folder hptune train-best wrote."
        )
    info = yaml.safe_load((folder / CONFIG).read_text())
    model = resolve_task(info["task"]).build_model(info["config"])
    model.load_state_dict(torch.load(folder / WEIGHTS, weights_only=True))
    return model, info
