"""The training toolkit: the pieces a PyTorch loop needs to make hyperparameters real.

Usable on their own, inside any training loop. Conventions: schedulers (and the warmup in
front of them) step once per optimizer step, a plateau scheduler gets ``step(metric=...)``
at evaluation time; options keep torch's names.
"""

from __future__ import annotations

from hptune.training.accumulation import (
    GradientAccumulator,
    Window,
    batch_len,
    train_with_gradient_accumulation,
)
from hptune.training.batch_size import (
    BatchPlan,
    DynamicBatchSizer,
    find_max_batch_size,
    is_oom_error,
    plan_batch,
)
from hptune.training.lr_finder import LRFinderResult, lr_range_test, suggest_lr
from hptune.training.optim import (
    OptimizerInfo,
    create_optimizer,
    create_optimizer_from_config,
    get_optimizer_info,
    list_optimizers,
    register_optimizer,
)
from hptune.training.param_groups import (
    apply_weight_decay_by_layer,
    describe_param_groups,
    is_norm_layer,
    param_groups,
)
from hptune.training.recipe import (
    CONFIG_KEYS,
    METRICS,
    TRAINING_OPTIONS,
    TrainResult,
    lr_find,
    parse_config,
    train,
)
from hptune.training.schedulers import (
    WarmupScheduler,
    create_lr_scheduler,
    list_schedulers,
    needs_metric,
    register_scheduler,
)

__all__ = [
    "CONFIG_KEYS",
    "METRICS",
    "TRAINING_OPTIONS",
    "TrainResult",
    "lr_find",
    "parse_config",
    "train",
    "is_oom_error",
    "BatchPlan",
    "DynamicBatchSizer",
    "GradientAccumulator",
    "LRFinderResult",
    "OptimizerInfo",
    "WarmupScheduler",
    "Window",
    "apply_weight_decay_by_layer",
    "batch_len",
    "create_lr_scheduler",
    "create_optimizer",
    "create_optimizer_from_config",
    "describe_param_groups",
    "find_max_batch_size",
    "get_optimizer_info",
    "is_norm_layer",
    "list_optimizers",
    "list_schedulers",
    "lr_range_test",
    "needs_metric",
    "param_groups",
    "plan_batch",
    "register_optimizer",
    "register_scheduler",
    "suggest_lr",
    "train_with_gradient_accumulation",
]
