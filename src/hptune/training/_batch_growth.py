"""The recipe's batch-growth schedule: the ``batch_growth`` key of a trial config.

"Start small, grow within memory": the effective batch is multiplied by ``factor`` every
``every_epochs`` epochs, up to ``max_batch_size``, with the learning rate kept, or scaled
with the batch (``lr_policy``). Growing the batch instead of decaying the LR reaches the
same accuracy in fewer optimizer steps (Smith et al. 2017, "Don't Decay the Learning Rate,
Increase the Batch Size", arXiv 1711.00489); the linear and square-root rules are those of
:class:`~hptune.training.batch_size.DynamicBatchSizer`, which applies them in the recipe.

The schedule depends on the epoch alone (not on a metric), so the recipe knows every
epoch's batch before it starts and gives the LR scheduler its true length in steps.

Example:
    >>> growth = parse_batch_growth({"factor": 2, "every_epochs": 2, "max_batch_size": 100})
    >>> batch_sizes(32, growth.cap(micro_cap=None, n_samples=1000), growth, epochs=6)
    [32, 32, 64, 64, 100, 100]
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hptune._checks import Int, Number, OneOf, check
from hptune.exceptions import ConfigError
from hptune.training.batch_size import DynamicBatchSizer

#: The options of ``batch_growth``, with their meaning and default.
GROWTH_KEYS: dict[str, str] = {
    "factor": "float >= 1: multiply the effective batch by this at each growth (1: never grow)",
    "every_epochs": "int >= 1: epochs between two growths (required)",
    "max_batch_size": "int >= 1 or 'memory': cap on the effective batch; 'memory' (the "
    "default) is the largest micro-batch (max_micro_batch, or the fitted one with "
    "fit_micro_batch on a GPU), so the batch grows without accumulation",
    "lr_policy": "keep | linear | sqrt: the LR at each growth; default keep",
}
MEMORY = "memory"


@dataclass(frozen=True)
class BatchGrowth:
    """A checked ``batch_growth`` entry (see :data:`GROWTH_KEYS`).

    Args:
        factor: Multiply the effective batch by this at each growth (> 1); it grows by at
            least one sample, as ``DynamicBatchSizer`` does.
        every_epochs: Grow after epochs ``every_epochs``, ``2 * every_epochs``, ... (1-based).
        max_batch_size: The cap, or ``"memory"`` for the micro-batch cap.
        lr_policy: ``"keep"``, ``"linear"`` (Goyal et al. 2017) or ``"sqrt"``.
    """

    factor: float
    every_epochs: int
    max_batch_size: int | str = MEMORY
    lr_policy: str = "keep"

    def cap(self, micro_cap: int | None, n_samples: int) -> int:
        """The largest effective batch: ``max_batch_size``, or with ``"memory"`` the
        micro-batch cap (``None``: none known); never more than the training split."""
        if self.max_batch_size == MEMORY:
            return min(micro_cap or n_samples, n_samples)
        return min(int(self.max_batch_size), n_samples)

    def sizer(self, initial: int, cap: int, **lr_targets: Any) -> DynamicBatchSizer:
        """The :class:`DynamicBatchSizer` that grows ``initial`` to at most ``cap``; pass
        ``optimizer=`` and ``scheduler=`` for it to apply the LR policy to them."""
        return DynamicBatchSizer(
            initial,
            max(cap, initial),  # a batch above the cap is kept (accumulation honours it)
            self.factor,
            every_n_epochs=self.every_epochs,
            lr_policy=self.lr_policy,
            **lr_targets,
        )


def parse_batch_growth(value: Any) -> BatchGrowth | None:
    """Check a ``batch_growth`` entry; ``None`` (no growth) for ``None`` or ``factor: 1``.

    Raises:
        ConfigError: A value breaks its rule, or an option is unknown; the message names it.
    """
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"config['batch_growth'] must be a mapping such as {{factor: 2, every_epochs: 5}}; "
            f"got {value!r}."
        )
    unknown = sorted(set(value) - set(GROWTH_KEYS), key=str)
    if unknown:
        raise ConfigError(
            f"config['batch_growth'] has unknown option(s) {', '.join(map(repr, unknown))}; "
            f"valid: {', '.join(GROWTH_KEYS)}."
        )
    if "every_epochs" not in value:
        raise ConfigError(
            "config['batch_growth'] needs every_epochs, the epochs between two growths; "
            "e.g. {factor: 2, every_epochs: 5}."
        )

    def option(key: str, rule: Any) -> Any:
        fix = GROWTH_KEYS[key].split(": ", 1)[-1]
        return check(f"config['batch_growth'][{key!r}]", value[key], rule, fix)

    factor = float(option("factor", Number(low=1))) if "factor" in value else 2.0
    every = int(option("every_epochs", Int(low=1)))
    cap = value.get("max_batch_size", MEMORY)
    if cap != MEMORY:
        cap = int(option("max_batch_size", Int(low=1)))
    policy = (
        option("lr_policy", OneOf(("keep", "linear", "sqrt"))) if "lr_policy" in value else "keep"
    )
    if factor == 1.0:
        return None
    return BatchGrowth(factor, every, cap, policy)


def batch_sizes(initial: int, cap: int, growth: BatchGrowth | None, epochs: int) -> list[int]:
    """The effective batch of each epoch (index 0 is epoch 1), as the recipe will grow it."""
    if growth is None:
        return [initial] * epochs
    sizer = growth.sizer(initial, cap)
    sizes = []
    for epoch in range(epochs):
        sizes.append(sizer.current_batch_size)
        sizer.on_epoch_end(epoch)
    return sizes


def warmup_steps_over(warmup_epochs: float, steps_per_epoch: list[int]) -> int:
    """``warmup_epochs`` in optimizer steps when epochs differ in steps: the whole epochs'
    steps plus the fraction of the next one, rounded."""
    whole = min(math.floor(warmup_epochs), len(steps_per_epoch))
    steps = float(sum(steps_per_epoch[:whole]))
    if whole < len(steps_per_epoch):
        steps += (warmup_epochs - whole) * steps_per_epoch[whole]
    return round(steps)
