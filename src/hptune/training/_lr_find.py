"""The LR range test on a task, configured like a trial: :func:`lr_find`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from hptune.training._recipe_config import build_optimizer, parse_config
from hptune.training._recipe_parts import make_loader, resolve_device, seed_everything
from hptune.training.lr_finder import LRFinderResult, lr_range_test


def lr_find(
    task: Any,
    config: Mapping[str, Any] | None = None,
    *,
    seed: int = 0,
    min_lr: float = 1e-7,
    max_lr: float = 10.0,
    n_steps: int = 100,
    device: str | torch.device = "auto",
    data: Any = None,
) -> LRFinderResult:
    """Run the LR range test (Smith 2017, arXiv 1506.01186) on ``task``'s training split.

    The model, optimizer (with its options and weight decay) and batch size come from
    ``config`` as in :func:`hptune.training.recipe.train`; the sweep sets the LR itself, so
    ``lr``, warmup and the scheduler play no part (``lr`` only fixes the ratio between
    parameter groups, which the sweep keeps). Batches are whole ``batch_size`` batches,
    without accumulation. Seeded like a trial, so the same seed gives the same curve.

    Args:
        task: A :class:`hptune.tasks.Task` (resolve a name with ``hptune.tasks.get_task``).
        config: A trial config (keys in ``CONFIG_KEYS``); ``None`` uses the defaults.
        seed: Seeds the model's initial weights and the data order.
        min_lr: First LR of the sweep.
        max_lr: Last LR of the sweep.
        n_steps: Optimizer steps of the sweep; the training split is cycled if shorter.
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        data: Pre-built splits; ``None`` calls ``task.datasets()``.

    Returns:
        The :class:`~hptune.training.lr_finder.LRFinderResult` (``suggested_lr``,
        ``suggested_range``, the curve, and ``plot(path)``). Both suggestions are ``None``
        only when the smoothed loss never fell; ``no_suggestion_reason`` then says why.

    Example:
        >>> from hptune.tasks import get_task
        >>> result = lr_find(get_task("digits-mlp"), {"batch_size": 32})  # doctest: +SKIP
        >>> result.suggested_lr, result.suggested_range  # doctest: +SKIP
        (0.0215..., (0.00486..., 0.0657...))
    """
    config = dict(config or {})
    cfg = parse_config(config)
    dev = resolve_device(device)
    generator = seed_everything(seed, dev)
    splits = task.datasets() if data is None else data
    model = task.build_model(config).to(dev)
    optimizer = build_optimizer(model, cfg, cfg.base_lr())
    loader = make_loader(splits.train, cfg.batch_size, shuffle=True, generator=generator)
    return lr_range_test(
        model, optimizer, loader, task.loss_fn,
        min_lr=min_lr, max_lr=max_lr, n_steps=n_steps, device=dev,
    )  # fmt: skip
