"""Linear LR warmup that hands over to any scheduler, ReduceLROnPlateau included.

torch's ``SequentialLR`` refuses ``ReduceLROnPlateau`` (pytorch issues 68978, 110761) and
timm's warmup in front of a plateau counts epochs only and drops the plateau's counters from
its ``state_dict``. :class:`WarmupScheduler` wraps the scheduler instead: it writes the LR
itself during warmup, leaves the wrapped scheduler's clock untouched until warmup ends, and
saves both in one ``state_dict``. Warmup itself follows Goyal et al. 2017, "Accurate, Large
Minibatch SGD" (arXiv 1706.02677), section 2.2 (gradual warmup).
"""

from __future__ import annotations

import copy
import logging
import math
import numbers
from typing import Any

import torch
from torch.optim.lr_scheduler import ReduceLROnPlateau

from hptune._checks import Int, check
from hptune.exceptions import ConfigError

logger = logging.getLogger("hptune.training.schedulers")

# The attributes a state_dict carries as they are; "last_lr" and "after" are added to them.
_STATE_KEYS = ("warmup_steps", "start_factor", "base_lrs", "n_steps", "last_metric")


def scheduler_needs_metric(scheduler: Any) -> bool:
    """Whether ``scheduler`` only moves when given a metric (``ReduceLROnPlateau`` and kin).

    An object may declare itself metric-driven with a true ``needs_metric`` attribute, as
    :class:`WarmupScheduler` does when it wraps a plateau scheduler.
    """
    if isinstance(scheduler, ReduceLROnPlateau):
        return True
    return bool(getattr(scheduler, "needs_metric", False))


def steps_per_optimizer_step(scheduler: Any) -> bool:
    """Whether ``step()`` belongs after every optimizer step: False only for a bare
    metric-driven scheduler, which moves at evaluations alone (a :class:`WarmupScheduler`
    takes both kinds of call, whatever it wraps)."""
    return isinstance(scheduler, WarmupScheduler) or not scheduler_needs_metric(scheduler)


def _set_lr(group: dict[str, Any], value: float) -> None:
    # A tensor LR (capturable optimizers) must be updated in place, as torch does.
    if isinstance(group["lr"], torch.Tensor):
        group["lr"].fill_(value)
    else:
        group["lr"] = value


class WarmupScheduler:
    """Linear LR warmup per optimizer step, then hand-over to any scheduler.

    For ``k`` calls of :meth:`step` (``k = 0`` right after construction) each parameter group
    runs at ``base_lr * (start_factor + (1 - start_factor) * k / warmup_steps)`` while
    ``k < warmup_steps``, at exactly ``base_lr`` when ``k == warmup_steps``, and from then on
    ``after`` decides: its own clock starts when warmup ends, so a cosine with ``T_max=N``
    decays over its full ``N`` steps after warmup and the LR never jumps at the hand-over.
    ``base_lr`` of a group is its LR when the warmup is built, i.e. the LR ``after`` starts
    from (build ``after`` first, as ``WarmupScheduler(opt, 5, after=CosineAnnealingLR(...))``
    does). Per-group LR ratios are therefore kept throughout.

    ``step()`` is called once per optimizer step, after ``optimizer.step()``.
    ``step(metric)`` is an evaluation event, never an optimizer step: it does not advance the
    clock. After warmup it goes to a metric-driven ``after`` (``ReduceLROnPlateau``); during
    warmup, and for any other ``after``, the metric is only recorded in ``last_metric``,
    because losses measured while the LR is still rising say nothing about a plateau. So
    the plateau's patience counts evaluations after warmup, and its reductions are never
    overwritten: once warmup is over this class never writes the LR again, and a plain
    ``step()`` does not touch a plateau scheduler at all (it moves only at evaluations).

    Absolute LRs instead of factors: ``WarmupScheduler(optimizer, warmup_steps,
    initial_lr=..., target_lr=...)``. ``target_lr`` is the post-warmup LR of the first
    parameter group; every other group keeps its LR ratio to the first. ``initial_lr`` is
    the first group's LR at step 0 (``start_factor = initial_lr / target_lr``); the LR
    reaches ``target_lr`` after ``warmup_steps`` steps.

    Args:
        optimizer: The optimizer whose parameter groups get the LR.
        warmup_steps: Number of :meth:`step` calls the warmup lasts; 0 means no warmup.
        after: The scheduler that takes over after warmup, built on the same optimizer: a
            torch ``LRScheduler``, a ``ReduceLROnPlateau``, or ``None`` (constant LR).
        start_factor: Fraction of ``base_lr`` at step 0, in ``[0, 1]``. With the default
            0.0 the first optimizer step runs at LR 0 (Adam still gathers its moment
            estimates there); pass e.g. 0.01 to move the weights from the first step.
        initial_lr: Absolute LR of the first group at step 0, instead of ``start_factor``.
        target_lr: Absolute post-warmup LR of the first group. With ``after``
            given it must equal that group's current LR, which ``after`` starts from.

    Example:
        >>> import torch
        >>> model = torch.nn.Linear(2, 1)
        >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
        >>> cosine = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10)
        >>> sched = WarmupScheduler(opt, warmup_steps=4, after=cosine)
        >>> for _ in range(4):
        ...     opt.step()
        ...     sched.step()
        >>> sched.get_last_lr()
        [0.1]
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        warmup_steps: int,
        after: Any = None,
        start_factor: float = 0.0,
        *,
        initial_lr: float | None = None,
        target_lr: float | None = None,
    ) -> None:
        _check_optimizer(optimizer)
        check_warmup_steps(warmup_steps)
        _check_after(after, optimizer)
        group_lrs = [float(group["lr"]) for group in optimizer.param_groups]
        self.optimizer = optimizer
        self.after = after
        self.warmup_steps = int(warmup_steps)
        self.base_lrs = _target_lrs(group_lrs, target_lr, after)
        self.start_factor = _start_factor(start_factor, initial_lr, self.base_lrs[0])
        self.n_steps = 0
        self.last_metric: float | None = None
        self._apply(self._warmup_lrs(0))

    @property
    def needs_metric(self) -> bool:
        """Whether the scheduler after warmup moves only on ``step(metric)``."""
        return scheduler_needs_metric(self.after)

    @property
    def in_warmup(self) -> bool:
        """True until ``warmup_steps`` calls of :meth:`step` have been made."""
        return self.n_steps < self.warmup_steps

    def step(self, metric: float | None = None) -> None:
        """Advance one optimizer step, or, given ``metric``, record an evaluation.

        Args:
            metric: The evaluation value (e.g. validation loss) at evaluation time; leave
                it out for the per-optimizer-step call.
        """
        if metric is not None:
            self._evaluate(float(metric))
            return
        self.n_steps += 1
        if self.n_steps <= self.warmup_steps:
            self._apply(self._warmup_lrs(self.n_steps))
            if self.n_steps == self.warmup_steps:
                logger.debug("warmup done after %d steps; LR %s", self.n_steps, self.base_lrs)
        elif self.after is not None and not self.needs_metric:
            self.after.step()
        self._last_lr = self._group_lrs()

    def get_last_lr(self) -> list[float]:
        """The LR of each parameter group after the last call, like torch's schedulers."""
        return list(self._last_lr)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue the identical LR sequence, ``after``'s state included."""
        state = {key: copy.deepcopy(getattr(self, key)) for key in _STATE_KEYS}
        state["last_lr"] = list(self._last_lr)
        state["after"] = None if self.after is None else copy.deepcopy(self.after.state_dict())
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`; the saved LRs are written back into the optimizer.

        Writing them back makes the result independent of whether the optimizer's own
        state is loaded before or after this call.
        """
        _check_state(state_dict, self.after, len(self.optimizer.param_groups))
        for key in _STATE_KEYS:
            setattr(self, key, copy.deepcopy(state_dict[key]))
        if self.after is not None:
            # copy: some torch schedulers (CyclicLR) pop keys from the dict they load.
            self.after.load_state_dict(copy.deepcopy(state_dict["after"]))
        self._apply(list(state_dict["last_lr"]))

    def __repr__(self) -> str:
        after = type(self.after).__name__ if self.after is not None else None
        return (
            f"WarmupScheduler(warmup_steps={self.warmup_steps}, after={after}, "
            f"start_factor={self.start_factor}, n_steps={self.n_steps})"
        )

    def _evaluate(self, metric: float) -> None:
        self.last_metric = metric
        if self.in_warmup or not self.needs_metric:
            return
        self.after.step(metric)
        self._last_lr = self._group_lrs()

    def _warmup_lrs(self, k: int) -> list[float]:
        if k >= self.warmup_steps:
            # Exactly base_lr at the hand-over, not a float-rounded factor times it.
            return list(self.base_lrs)
        factor = self.start_factor + (1.0 - self.start_factor) * k / self.warmup_steps
        return [base * factor for base in self.base_lrs]

    def _apply(self, lrs: list[float]) -> None:
        for group, lr in zip(self.optimizer.param_groups, lrs, strict=True):
            _set_lr(group, lr)
        self._last_lr = self._group_lrs()

    def _group_lrs(self) -> list[float]:
        return [float(group["lr"]) for group in self.optimizer.param_groups]


def _check_optimizer(optimizer: Any) -> None:
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise ConfigError(
            f"WarmupScheduler needs a torch.optim.Optimizer, got {type(optimizer).__name__}. "
            "Pass the optimizer whose LR it should warm up."
        )


def check_warmup_steps(warmup_steps: Any) -> None:
    fix = "optimizer steps, 0 for none; convert epochs with epochs * steps_per_epoch"
    check("warmup_steps", warmup_steps, Int(low=0), fix=fix)


def _check_after(after: Any, optimizer: torch.optim.Optimizer) -> None:
    if after is None:
        return
    if not all(hasattr(after, name) for name in ("step", "state_dict", "load_state_dict")):
        raise ConfigError(
            f"after must be an LR scheduler (step, state_dict, load_state_dict), got "
            f"{type(after).__name__}. Pass e.g. CosineAnnealingLR(optimizer, T_max=...)."
        )
    if isinstance(after, WarmupScheduler):
        raise ConfigError(
            "after is itself a WarmupScheduler; warmups do not nest (the inner one has "
            "already lowered the LR the outer would warm up to). Use a single warmup."
        )
    if getattr(after, "optimizer", optimizer) is not optimizer:
        raise ConfigError(
            f"after ({type(after).__name__}) was built on another optimizer than the one "
            "given to WarmupScheduler. Build both on the same optimizer."
        )


def _target_lrs(group_lrs: list[float], target_lr: float | None, after: Any) -> list[float]:
    if target_lr is None:
        return list(group_lrs)
    if not (isinstance(target_lr, numbers.Real) and target_lr > 0):
        raise ConfigError(f"target_lr must be a float > 0, got {target_lr!r}.")
    if after is not None and not math.isclose(target_lr, group_lrs[0], rel_tol=1e-12):
        raise ConfigError(
            f"target_lr={target_lr!r} differs from the LR {group_lrs[0]!r} that "
            f"{type(after).__name__} starts from. Set the optimizer's lr to {target_lr!r} "
            "before building the scheduler, or leave target_lr out."
        )
    if group_lrs[0] <= 0:
        raise ConfigError(
            f"target_lr scales every group by its LR ratio to the first group, whose LR is "
            f"{group_lrs[0]!r}. Give the first group an LR > 0."
        )
    return [target_lr * (lr / group_lrs[0]) for lr in group_lrs]


def _start_factor(start_factor: float, initial_lr: float | None, first_base: float) -> float:
    if initial_lr is not None:
        if start_factor != 0.0:
            raise ConfigError(
                f"Give either start_factor ({start_factor!r}) or initial_lr "
                f"({initial_lr!r}), not both: initial_lr sets start_factor."
            )
        if first_base <= 0:
            raise ConfigError(f"initial_lr needs a post-warmup LR > 0, got {first_base!r}.")
        start_factor = initial_lr / first_base
        if not 0.0 <= start_factor <= 1.0:
            raise ConfigError(
                f"initial_lr must lie in [0, target LR {first_base!r}], got {initial_lr!r}. "
                "Warmup rises to the target LR."
            )
    if not (isinstance(start_factor, numbers.Real) and 0.0 <= start_factor <= 1.0):
        raise ConfigError(
            f"start_factor must be a float in [0, 1] (fraction of the LR at step 0), got "
            f"{start_factor!r}."
        )
    return float(start_factor)


def _check_state(state: dict[str, Any], after: Any, n_groups: int) -> None:
    missing = [key for key in (*_STATE_KEYS, "last_lr", "after") if key not in state]
    if missing:
        raise ConfigError(
            f"Not a WarmupScheduler state_dict: keys {missing} are missing. Pass the dict "
            "returned by WarmupScheduler.state_dict()."
        )
    if (state["after"] is None) != (after is None):
        saved = "a scheduler" if state["after"] is not None else "none"
        raise ConfigError(
            f"The state_dict was saved with {saved} after warmup, but this WarmupScheduler "
            f"has after={type(after).__name__ if after is not None else None}. Rebuild it "
            "with the same kind of after as the one saved."
        )
    if len(state["base_lrs"]) != n_groups:
        raise ConfigError(
            f"The state_dict holds {len(state['base_lrs'])} parameter groups, the optimizer "
            f"has {n_groups}. Load it into an optimizer built the same way."
        )
