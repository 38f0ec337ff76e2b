"""The trial config the training recipe understands: keys, defaults, checks, and the
optimizer and scheduler it describes.

Kept apart from the loop in :mod:`hptune.training.recipe` so that the spec validator and the
CLI can check a config (``CONFIG_KEYS``, :func:`parse_config`) without training anything.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from hptune._checks import Int, Number, check
from hptune.exceptions import ConfigError
from hptune.training import schedulers
from hptune.training._batch_growth import BatchGrowth, parse_batch_growth
from hptune.training.optim import create_optimizer_from_config, get_optimizer_info
from hptune.training.param_groups import param_groups

#: Top-level keys of a trial config, with their meaning and default. Anything else is an
#: error: options of your own model go under ``model:``.
CONFIG_KEYS: dict[str, str] = {
    "lr": "float > 0: peak learning rate (after warmup); default: the optimizer's (adam 1e-3)",
    "batch_size": "int >= 1: effective batch (samples per optimizer step); default 64",
    "weight_decay": "float >= 0: decay of weights; never of biases or norm layers; default 0",
    "decay_map": "{glob: float >= 0}: per-parameter weight decay, first match wins; default none",
    "warmup_epochs": "float >= 0: linear LR warmup, in epochs; default 0",
    "warmup_steps": "int >= 0: linear LR warmup, in optimizer steps (instead of epochs); default 0",
    "optimizer": "name or {name: ..., options}: see list_optimizers(); default adam",
    "scheduler": "name or {name: ..., options}: see list_schedulers(); default constant",
    "grad_clip": "float > 0: clip the global gradient norm; overrides training.grad_clip",
    "batch_growth": "{factor, every_epochs, max_batch_size, lr_policy}: grow the effective "
    "batch every few epochs (see GROWTH_KEYS); default none",
    "model": "mapping: options of the task's model factory (width, depth, dropout, ...)",
}

DEFAULT_BATCH_SIZE = 64


@dataclass(frozen=True)
class RecipeConfig:
    """A checked trial config with its defaults filled in (see :data:`CONFIG_KEYS`).

    Args:
        lr: Peak LR; ``None`` means the optimizer's default.
        batch_size: Effective batch size.
        weight_decay: Weight decay of decayed parameters.
        decay_map: Per-parameter decay by glob on parameter names, or ``None``.
        warmup_epochs: Warmup length in epochs (0 when ``warmup_steps`` is used).
        warmup_steps: Warmup length in optimizer steps, or ``None`` to use epochs.
        optimizer: ``{"name": ..., **options}``.
        scheduler: ``{"name": ..., **options}``.
        grad_clip: Gradient-norm clip from the config, or ``None``.
        model: The ``model`` section (may be empty).
        batch_growth: The batch-growth schedule, or ``None`` for a fixed batch.

    Example:
        >>> parse_config({"lr": 0.1, "optimizer": "sgd"}).optimizer
        {'name': 'sgd'}
    """

    lr: float | None
    batch_size: int
    weight_decay: float
    decay_map: dict[str, float] | None
    warmup_epochs: float
    warmup_steps: int | None
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    grad_clip: float | None
    model: dict[str, Any] = field(default_factory=dict)
    batch_growth: BatchGrowth | None = None

    @property
    def optimizer_name(self) -> str:
        return str(self.optimizer["name"])

    def base_lr(self) -> float:
        """The configured LR, or the optimizer's default when the config sets none."""
        return (
            self.lr if self.lr is not None else get_optimizer_info(self.optimizer_name).default_lr
        )


def _number(config: Mapping[str, Any], key: str, default: Any, *, positive: bool) -> Any:
    value = config.get(key, default)
    if value is None:
        return None
    return float(check(f"config[{key!r}]", value, Number(low=0, low_open=positive), _fix(key)))


def _integer(config: Mapping[str, Any], key: str, default: Any, low: int) -> Any:
    value = config.get(key, default)
    if value is None:
        return None
    return int(check(f"config[{key!r}]", value, Int(low=low), _fix(key)))


def _fix(key: str) -> str:
    """The meaning of ``key`` without its rule (the error states the rule)."""
    return CONFIG_KEYS[key].split(": ", 1)[-1]


def _named(config: Mapping[str, Any], key: str, default: str) -> dict[str, Any]:
    """A ``name`` or ``{"name": ..., **options}`` entry as a fresh dict with ``name``."""
    value = config.get(key, default)
    if isinstance(value, str):
        return {"name": value}
    if isinstance(value, Mapping) and isinstance(value.get("name"), str):
        return dict(value)
    raise ConfigError(
        f"config[{key!r}] must be a name or a mapping with a 'name' key; got {value!r}. "
        f"Use e.g. {key}: {{name: {default}}}."
    )


def parse_config(config: Mapping[str, Any]) -> RecipeConfig:
    """Check a trial config against :data:`CONFIG_KEYS` and fill in the defaults.

    Raises:
        ConfigError: For an unknown key (the valid ones are listed) or a bad value.
    """
    if not isinstance(config, Mapping):
        raise ConfigError(f"config must be a mapping such as {{'lr': 0.01}}; got {config!r}.")
    unknown = sorted(set(config) - set(CONFIG_KEYS), key=str)
    if unknown:
        raise ConfigError(
            f"Unknown config key(s) {', '.join(map(repr, unknown))}. Valid keys: "
            f"{', '.join(CONFIG_KEYS)}. Options of your own model go under 'model:'."
        )
    warmup_epochs = _number(config, "warmup_epochs", 0.0, positive=False)
    warmup_steps = _integer(config, "warmup_steps", None, 0)
    if warmup_steps and warmup_epochs:
        raise ConfigError(
            f"config sets both warmup_epochs={config['warmup_epochs']!r} and "
            f"warmup_steps={warmup_steps!r}; keep one of them."
        )
    model = config.get("model") or {}
    if not isinstance(model, Mapping):
        raise ConfigError(f"config['model'] must be a mapping of model options; got {model!r}.")
    decay_map = config.get("decay_map")
    if decay_map is not None and not isinstance(decay_map, Mapping):
        raise ConfigError(
            f"config['decay_map'] must be a mapping {{glob: weight decay}}; got {decay_map!r}."
        )
    return RecipeConfig(
        lr=_number(config, "lr", None, positive=True),
        batch_size=_integer(config, "batch_size", DEFAULT_BATCH_SIZE, 1),
        weight_decay=_number(config, "weight_decay", 0.0, positive=False),
        decay_map=dict(decay_map) if decay_map is not None else None,
        warmup_epochs=warmup_epochs,
        warmup_steps=warmup_steps,
        optimizer=_named(config, "optimizer", "adam"),
        scheduler=_named(config, "scheduler", "constant"),
        grad_clip=_number(config, "grad_clip", None, positive=True),
        model=dict(model),
        batch_growth=parse_batch_growth(config.get("batch_growth")),
    )


def build_optimizer(model: nn.Module, cfg: RecipeConfig, lr: float) -> torch.optim.Optimizer:
    """The configured optimizer over merged parameter groups (no decay on biases/norms)."""
    if cfg.decay_map is None:
        return create_optimizer_from_config(model, cfg.optimizer, lr, cfg.weight_decay)
    groups = param_groups(model, cfg.weight_decay, decay_map=cfg.decay_map)
    return create_optimizer_from_config(groups, cfg.optimizer, lr, cfg.weight_decay)


def warmup_steps(cfg: RecipeConfig, steps_per_epoch: int) -> int:
    """Warmup in optimizer steps: ``warmup_steps`` as given, else epochs times steps per epoch."""
    if cfg.warmup_steps is not None:
        return cfg.warmup_steps
    return round(cfg.warmup_epochs * steps_per_epoch)


def scheduler_options(
    cfg: RecipeConfig, after_steps: int, direction: str
) -> tuple[str, dict[str, Any]]:
    """The scheduler's name and options with the lengths the run implies filled in.

    ``after_steps`` is the number of optimizer steps after warmup. Options the user gave are
    kept; missing ones are filled: ``T_max`` (cosine), ``total_iters`` (linear, polynomial)
    and ``total_steps`` (onecycle, unless ``epochs``/``steps_per_epoch`` are given) become
    ``after_steps``, and a plateau's ``mode`` follows ``direction`` (it is fed the tuned
    metric, so "maximize" means it waits for the metric to stop rising).
    """
    options = {key: value for key, value in cfg.scheduler.items() if key != "name"}
    name = cfg.scheduler["name"]
    # The registry's option table tells which lengths this scheduler takes, so schedulers
    # registered by users get theirs filled in too. (_entry is the package's own lookup.)
    accepted = schedulers._entry(name).options
    for key in ("T_max", "total_iters"):
        if key in accepted:
            options.setdefault(key, after_steps)
    if "total_steps" in accepted and not {"epochs", "steps_per_epoch"} & set(options):
        options.setdefault("total_steps", after_steps)
    if schedulers.needs_metric(name) and "mode" in accepted:
        options.setdefault("mode", "max" if direction == "maximize" else "min")
    return name, options


def scaled_lr(lr: float, batch_size: int, lr_scaling: str, base_batch_size: int | None) -> float:
    """The LR for ``batch_size`` when ``lr`` was tuned at ``base_batch_size``.

    ``linear``: ``lr * batch_size / base_batch_size`` (Goyal et al. 2017, arXiv 1706.02677);
    ``sqrt``: ``lr * sqrt(batch_size / base_batch_size)`` (Krizhevsky 2014, arXiv
    1404.5997); ``none``: ``lr``.

    The policy and ``base_batch_size`` come checked from ``TrainingOptions``.

    Example:
        >>> scaled_lr(0.1, 256, "linear", 64)
        0.4
    """
    if lr_scaling == "none":
        return lr
    assert base_batch_size is not None, "TrainingOptions requires it with lr_scaling"
    ratio = batch_size / base_batch_size
    return lr * (ratio if lr_scaling == "linear" else math.sqrt(ratio))
