"""The training toolkit: the pieces a PyTorch loop needs to make hyperparameters real.

Usable on their own, inside any training loop. Conventions: schedulers (and the warmup in
front of them) step once per optimizer step, a plateau scheduler gets ``step(metric=...)``
at evaluation time; options keep torch's names.

The names below load on first use (PEP 562), so that ``hptune.training.options`` (what a
spec checks its ``training:`` section with) can be imported without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Public name -> the module of this package that defines it.
_EXPORTS = {
    "GradientAccumulator": "accumulation",
    "Window": "accumulation",
    "batch_len": "accumulation",
    "train_with_gradient_accumulation": "accumulation",
    "BatchPlan": "batch_size",
    "DynamicBatchSizer": "batch_size",
    "find_max_batch_size": "batch_size",
    "is_oom_error": "batch_size",
    "plan_batch": "batch_size",
    "LRFinderResult": "lr_finder",
    "lr_range_test": "lr_finder",
    "suggest_lr": "lr_finder",
    "OptimizerInfo": "optim",
    "create_optimizer": "optim",
    "create_optimizer_from_config": "optim",
    "get_optimizer_info": "optim",
    "list_optimizers": "optim",
    "register_optimizer": "optim",
    "TrainingOptions": "options",
    "apply_weight_decay_by_layer": "param_groups",
    "describe_param_groups": "param_groups",
    "is_norm_layer": "param_groups",
    "param_groups": "param_groups",
    "evaluate": "_recipe_parts",
    "config_problems": "_config_check",
    "message_of": "_config_check",
    "build_optimizer": "_recipe_config",
    "scheduler_options": "_recipe_config",
    "warmup_steps": "_recipe_config",
    "CONFIG_KEYS": "recipe",
    "METRICS": "recipe",
    "TrainResult": "recipe",
    "lr_find": "recipe",
    "parse_config": "recipe",
    "train": "recipe",
    "WarmupScheduler": "schedulers",
    "create_lr_scheduler": "schedulers",
    "list_schedulers": "schedulers",
    "needs_metric": "schedulers",
    "register_scheduler": "schedulers",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'hptune.training' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"hptune.training.{module}"), name)
    globals()[name] = value  # loaded once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
