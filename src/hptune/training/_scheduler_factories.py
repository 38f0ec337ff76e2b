"""Factories of the built-in schedulers: torch's classes, with hptune's checks and defaults.

Each factory's keyword parameters are the options :func:`create_lr_scheduler` accepts for
that name (the registry reads them from the signature), under torch's names. Values torch
would accept but that cannot be meant (a negative patience, ``gamma <= 0``) are refused
here with a :class:`~hptune.exceptions.ConfigError` that names the option and the rule.
"""

from __future__ import annotations

import logging
import numbers
from collections.abc import Sequence
from typing import Any

import torch
from torch.optim import lr_scheduler as tls

from hptune._checks import Int, Number, OneOf, Rule, check
from hptune.exceptions import ConfigError, HptuneError

logger = logging.getLogger("hptune.training.schedulers")

LRs = float | Sequence[float] | None


def _bad(sched: str, option: str, value: Any, rule: str, example: str) -> ConfigError:
    """For rules no :mod:`hptune._checks` rule expresses; same shape as :func:`check`."""
    return ConfigError(
        f"scheduler {sched!r}: {option} must be {rule}, got {value!r}; pass e.g. "
        f"{option}={example}."
    )


def _int(sched: str, option: str, value: Any, low: int, example: str) -> int:
    return int(_checked(sched, option, value, Int(low=low), example))


_POSITIVE = Number(low=0, low_open=True)
_NON_NEGATIVE = Number(low=0)
_OPEN_UNIT = Number(0, 1, low_open=True, high_open=True)
_AT_LEAST_ONE = Number(low=1)


def _num(sched: str, option: str, value: Any, rule: Rule, example: str) -> float:
    return float(_checked(sched, option, value, rule, example))


def _choice(sched: str, option: str, value: Any, choices: tuple[str, ...]) -> str:
    return _checked(sched, option, value, OneOf(choices), repr(choices[0]))


def _checked(sched: str, option: str, value: Any, rule: Rule, example: str) -> Any:
    return check(f"scheduler {sched!r}: {option}", value, rule, fix=f"pass e.g. {option}={example}")


def _real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _group_lrs(
    optimizer: torch.optim.Optimizer, value: LRs, sched: str, option: str
) -> list[float]:
    """Per-group LRs: the optimizer's own when ``value`` is None, else one or one per group."""
    if value is None:
        return [float(group["lr"]) for group in optimizer.param_groups]
    values = [value] * len(optimizer.param_groups) if _real(value) else list(value)
    if len(values) != len(optimizer.param_groups) or not all(_real(v) and v >= 0 for v in values):
        raise _bad(sched, option, value, "a float >= 0 or one per parameter group", "0.01")
    return [float(v) for v in values]


def _momentum_ok(optimizer: torch.optim.Optimizer, sched: str, cycle_momentum: bool) -> bool:
    if cycle_momentum and not ({"momentum", "betas"} & set(optimizer.defaults)):
        raise ConfigError(
            f"Scheduler {sched!r}: cycle_momentum=True needs an optimizer with momentum or "
            f"betas, but {type(optimizer).__name__} has neither. Pass cycle_momentum=False."
        )
    return bool(cycle_momentum)


class _LoggedReduceLROnPlateau(tls.ReduceLROnPlateau):
    """torch's ReduceLROnPlateau, logging each reduction (torch 2.7 removed ``verbose``).

    ``step`` takes the metric as torch does (``step(value)``, ``step(metrics=value)``) or as
    every hptune scheduler does (``step(metric=value)``), so a loop written against
    :class:`~hptune.training.WarmupScheduler` works when ``warmup_steps`` is 0. A call
    without a metric is refused with a message, not torch's bare ``TypeError``.
    """

    def step(  # type: ignore[override]
        self, metrics: Any = None, epoch: Any = None, *, metric: Any = None
    ) -> None:
        if metric is not None:
            if metrics is not None:
                raise ConfigError(
                    f"ReduceLROnPlateau.step got the metric twice ({metrics!r} and "
                    f"metric={metric!r}). Pass it once: step(metric=val_loss)."
                )
            metrics = metric
        if metrics is None:
            raise HptuneError(
                "The plateau scheduler moves only on a metric: call step(metric=val_loss) "
                "once per evaluation, not step() per optimizer step. (A WarmupScheduler "
                "around it takes both: step() per optimizer step, step(metric=...) per "
                "evaluation.)"
            )
        before = [float(group["lr"]) for group in self.optimizer.param_groups]
        super().step(metrics, epoch)
        for i, (old, group) in enumerate(zip(before, self.optimizer.param_groups, strict=True)):
            if float(group["lr"]) != old:
                logger.info(
                    "ReduceLROnPlateau: param group %d LR %.6g -> %.6g (metric %.6g)",
                    i,
                    old,
                    float(group["lr"]),
                    float(metrics),
                )


def constant(optimizer: torch.optim.Optimizer) -> tls.LRScheduler:
    """The optimizer's LR, unchanged (torch's ConstantLR with ``factor=1``)."""
    return tls.ConstantLR(optimizer, factor=1.0, total_iters=0)


def step(optimizer: torch.optim.Optimizer, step_size: int, gamma: float = 0.1) -> tls.LRScheduler:
    """StepLR: multiply by ``gamma`` every ``step_size`` steps."""
    step_size = _int("step", "step_size", step_size, 1, "1000")
    return tls.StepLR(optimizer, step_size, gamma=_num("step", "gamma", gamma, _POSITIVE, "0.1"))


def multistep(
    optimizer: torch.optim.Optimizer, milestones: Sequence[int], gamma: float = 0.1
) -> tls.LRScheduler:
    """MultiStepLR: multiply by ``gamma`` at each step listed in ``milestones``."""
    ok = isinstance(milestones, Sequence) and not isinstance(milestones, str) and milestones
    if not ok or any(
        isinstance(m, bool) or not isinstance(m, numbers.Integral) for m in milestones
    ):
        ok = False
    if not ok or list(milestones) != sorted(set(milestones)) or milestones[0] < 1:
        rule = "a non-empty, strictly increasing list of ints >= 1"
        raise _bad("multistep", "milestones", milestones, rule, "[300, 600]")
    gamma = _num("multistep", "gamma", gamma, _POSITIVE, "0.1")
    return tls.MultiStepLR(optimizer, milestones=[int(m) for m in milestones], gamma=gamma)


def exponential(optimizer: torch.optim.Optimizer, gamma: float) -> tls.LRScheduler:
    """ExponentialLR: multiply by ``gamma`` every step; ``gamma`` is required, as in torch."""
    return tls.ExponentialLR(optimizer, _num("exponential", "gamma", gamma, _POSITIVE, "0.999"))


def cosine(optimizer: torch.optim.Optimizer, T_max: int, eta_min: float = 0.0) -> tls.LRScheduler:
    """CosineAnnealingLR (Loshchilov & Hutter, SGDR, arXiv 1608.03983) over ``T_max`` steps.

    ``T_max`` is required: a guessed default makes the LR rise again after it.
    """
    T_max = _int("cosine", "T_max", T_max, 1, "total_steps")
    eta_min = _num("cosine", "eta_min", eta_min, _NON_NEGATIVE, "0.0")
    return tls.CosineAnnealingLR(optimizer, T_max=T_max, eta_min=eta_min)


def cosine_warm_restarts(
    optimizer: torch.optim.Optimizer, T_0: int, T_mult: int = 1, eta_min: float = 0.0
) -> tls.LRScheduler:
    """CosineAnnealingWarmRestarts (SGDR, arXiv 1608.03983): restarts after T_0, T_0*T_mult..."""
    name = "cosine_warm_restarts"
    return tls.CosineAnnealingWarmRestarts(
        optimizer,
        T_0=_int(name, "T_0", T_0, 1, "1000"),
        T_mult=_int(name, "T_mult", T_mult, 1, "2"),
        eta_min=_num(name, "eta_min", eta_min, _NON_NEGATIVE, "0.0"),
    )


def cyclic(
    optimizer: torch.optim.Optimizer,
    base_lr: LRs = None,
    max_lr: LRs = None,
    step_size_up: int = 2000,
    step_size_down: int | None = None,
    mode: str = "triangular",
    gamma: float = 1.0,
    cycle_momentum: bool = False,
    base_momentum: float = 0.8,
    max_momentum: float = 0.9,
) -> tls.LRScheduler:
    """CyclicLR (Smith, arXiv 1506.01186), triangular by default.

    ``max_lr`` defaults to each group's LR and ``base_lr`` to ``max_lr / 4`` (Smith suggests
    a ratio of 3 to 4); the LR starts at ``base_lr``. ``cycle_momentum`` defaults to False,
    unlike torch, so that a tuned momentum or beta1 is not overwritten; True needs an
    optimizer with ``momentum`` or ``betas`` (Adam's beta1 is cycled then).
    """
    maxs = _group_lrs(optimizer, max_lr, "cyclic", "max_lr")
    if base_lr is None:
        bases = [m / 4 for m in maxs]
    else:
        bases = _group_lrs(optimizer, base_lr, "cyclic", "base_lr")
    if any(b > m for b, m in zip(bases, maxs, strict=True)):
        raise _bad("cyclic", "base_lr", base_lr, f"<= max_lr {maxs}", "max_lr / 4")
    if step_size_down is not None:
        step_size_down = _int("cyclic", "step_size_down", step_size_down, 1, "2000")
    return tls.CyclicLR(
        optimizer,
        base_lr=bases,
        max_lr=maxs,
        step_size_up=_int("cyclic", "step_size_up", step_size_up, 1, "2000"),
        step_size_down=step_size_down,
        mode=_choice("cyclic", "mode", mode, ("triangular", "triangular2", "exp_range")),  # type: ignore[arg-type]
        gamma=_num("cyclic", "gamma", gamma, _POSITIVE, "1.0"),
        cycle_momentum=_momentum_ok(optimizer, "cyclic", cycle_momentum),
        base_momentum=base_momentum,
        max_momentum=max_momentum,
    )


def onecycle(
    optimizer: torch.optim.Optimizer,
    total_steps: int | None = None,
    max_lr: LRs = None,
    epochs: int | None = None,
    steps_per_epoch: int | None = None,
    pct_start: float = 0.3,
    anneal_strategy: str = "cos",
    cycle_momentum: bool = False,
    base_momentum: float = 0.85,
    max_momentum: float = 0.95,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    three_phase: bool = False,
) -> tls.LRScheduler:
    """OneCycleLR (Smith & Topin, arXiv 1708.07120) over ``total_steps`` optimizer steps.

    ``total_steps`` (or ``epochs`` and ``steps_per_epoch``) is required; torch raises when
    stepped past it. ``max_lr`` defaults to each group's LR; the LR starts at
    ``max_lr / div_factor``. ``cycle_momentum`` defaults to False, as for :func:`cyclic`.
    """
    if total_steps is None and (epochs is None or steps_per_epoch is None):
        raise ConfigError(
            "Scheduler 'onecycle' needs total_steps (or epochs and steps_per_epoch): the "
            "number of optimizer steps the cycle spans. Pass total_steps=..."
        )
    if total_steps is not None:
        total_steps = _int("onecycle", "total_steps", total_steps, 1, "1000")
    strategy = _choice("onecycle", "anneal_strategy", anneal_strategy, ("cos", "linear"))
    return tls.OneCycleLR(
        optimizer,
        max_lr=_group_lrs(optimizer, max_lr, "onecycle", "max_lr"),
        total_steps=total_steps,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        pct_start=_num("onecycle", "pct_start", pct_start, _OPEN_UNIT, "0.3"),
        anneal_strategy=strategy,  # type: ignore[arg-type]
        cycle_momentum=_momentum_ok(optimizer, "onecycle", cycle_momentum),
        base_momentum=base_momentum,
        max_momentum=max_momentum,
        div_factor=_num("onecycle", "div_factor", div_factor, _AT_LEAST_ONE, "25.0"),
        final_div_factor=_num(
            "onecycle", "final_div_factor", final_div_factor, _AT_LEAST_ONE, "1e4"
        ),
        three_phase=bool(three_phase),
    )


def plateau(
    optimizer: torch.optim.Optimizer,
    mode: str = "min",
    factor: float = 0.1,
    patience: int = 10,
    threshold: float = 1e-4,
    threshold_mode: str = "rel",
    cooldown: int = 0,
    min_lr: float | Sequence[float] = 0.0,
    eps: float = 1e-8,
) -> tls.ReduceLROnPlateau:
    """ReduceLROnPlateau, stepped with the metric at evaluation time; logs each reduction.

    ``patience`` and ``cooldown`` count evaluations (``step(metric)`` calls), not
    optimizer steps. torch's defaults throughout.
    """
    if not _real(min_lr):
        min_lr = _group_lrs(optimizer, min_lr, "plateau", "min_lr")
    return _LoggedReduceLROnPlateau(
        optimizer,
        mode=_choice("plateau", "mode", mode, ("min", "max")),  # type: ignore[arg-type]
        factor=_num("plateau", "factor", factor, _OPEN_UNIT, "0.5"),
        patience=_int("plateau", "patience", patience, 0, "5"),
        threshold=_num("plateau", "threshold", threshold, _NON_NEGATIVE, "1e-4"),
        threshold_mode=_choice("plateau", "threshold_mode", threshold_mode, ("rel", "abs")),  # type: ignore[arg-type]
        cooldown=_int("plateau", "cooldown", cooldown, 0, "0"),
        min_lr=_num("plateau", "min_lr", min_lr, _NON_NEGATIVE, "0.0") if _real(min_lr) else min_lr,
        eps=_num("plateau", "eps", eps, _NON_NEGATIVE, "1e-8"),
    )


def linear(
    optimizer: torch.optim.Optimizer,
    total_iters: int,
    start_factor: float = 1.0,
    end_factor: float = 0.0,
) -> tls.LRScheduler:
    """LinearLR as a decay, from ``start_factor`` to ``end_factor`` times the LR.

    ``total_iters`` is required and ``end_factor`` defaults to 0 (torch's defaults, 1/3 to
    1 over 5 steps, make a warmup; use WarmupScheduler for that).
    """
    closed_unit = Number(0, 1, low_open=True)
    return tls.LinearLR(
        optimizer,
        start_factor=_num("linear", "start_factor", start_factor, closed_unit, "1.0"),
        end_factor=_num("linear", "end_factor", end_factor, Number(0, 1), "0.0"),
        total_iters=_int("linear", "total_iters", total_iters, 1, "total_steps"),
    )


def polynomial(
    optimizer: torch.optim.Optimizer, total_iters: int, power: float = 1.0
) -> tls.LRScheduler:
    """PolynomialLR: ``lr * (1 - t / total_iters) ** power``, reaching 0 at ``total_iters``.

    ``total_iters`` is required: torch's default of 5 would leave the LR at 0 after 5 steps.
    """
    return tls.PolynomialLR(
        optimizer,
        total_iters=_int("polynomial", "total_iters", total_iters, 1, "total_steps"),
        power=_num("polynomial", "power", power, _POSITIVE, "1.0"),
    )
