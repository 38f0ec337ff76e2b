"""What the framework integrations share: the optional import, the optimizer and schedule a
trial config describes, and the record of one trial's reports.

A config means the same here as in hptune's own recipe (:func:`hptune.training.train`): the
same keys, defaults and checks (:func:`hptune.training.parse_config`), the same parameter
groups (no decay on biases and norm layers, ``decay_map``), and the same schedule
(``warmup_epochs`` or ``warmup_steps`` of linear warmup in front of the scheduler, whose
length, cosine ``T_max`` for one, is the optimizer steps left after warmup). So the best
config of a study trains the same way in either trainer.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from hptune._extras import require_extra
from hptune.exceptions import ConfigError

# The recipe's own readings of a config (optimizer over merged groups, warmup length,
# scheduler lengths filled in): imported, so that a config cannot mean two things.
from hptune.training import (
    WarmupScheduler,
    build_optimizer,
    create_lr_scheduler,
    needs_metric,
    parse_config,
    scheduler_options,
    warmup_steps,
)
from hptune.trial import Trial, TrialPruned

_DIRECTIONS = ("minimize", "maximize")


def require(module: str, extra: str) -> Any:
    """Import ``module`` or raise :class:`MissingExtraError` naming ``hptune[extra]``."""
    return require_extra(module, extra, f"hptune.integrations.{extra}")


def check_trial(trial: Any, where: str) -> Trial | None:
    """The hptune trial (or None); an Optuna trial is refused, its ``report`` takes
    ``(value, step)``, the other order, and would record a wrong curve without a word."""
    if trial is None or isinstance(trial, Trial):
        return trial
    raise ConfigError(
        f"{where}: trial must be the hptune.Trial your objective received (or None); got "
        f"{type(trial).__module__}.{type(trial).__name__}."
    )


def check_steps(value: Any, name: str, *, low: int) -> int:
    """``value`` as an int >= ``low``; a float that is a whole number is accepted."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ConfigError(
            f"{name} must be an int >= {low} (optimizer steps); got {value!r}. Give a finite "
            "number of training steps (max_epochs or max_steps)."
        )
    return int(value)


def build_optimizer_and_scheduler(
    model: nn.Module,
    config: Mapping[str, Any],
    *,
    total_steps: int,
    steps_per_epoch: int | None,
    direction: str | None,
    scheduler_class: type[WarmupScheduler] = WarmupScheduler,
) -> tuple[torch.optim.Optimizer, WarmupScheduler]:
    """The optimizer and schedule ``config`` describes, for ``total_steps`` optimizer steps.

    The schedule is always a :class:`~hptune.training.WarmupScheduler` (with 0 warmup steps
    when the config has none), so a trainer treats every config alike: ``step()`` after
    each optimizer step, ``step(metric=...)`` at each evaluation, which reaches a plateau
    scheduler only once warmup is over.

    Args:
        model: The model whose parameters are optimized.
        config: A trial config (keys of :data:`hptune.training.CONFIG_KEYS`).
        total_steps: Optimizer steps the run will take (after gradient accumulation).
        steps_per_epoch: Optimizer steps per epoch; needed for ``warmup_epochs`` only.
        direction: ``"minimize"`` or ``"maximize"``: the plateau scheduler's ``mode`` when
            the config does not set one. Needed for a plateau scheduler only.
        scheduler_class: ``WarmupScheduler`` or a subclass to build.
    """
    cfg = parse_config(config)
    total_steps = check_steps(total_steps, "total_steps", low=1)
    if direction is not None and direction not in _DIRECTIONS:
        raise ConfigError(f"direction must be 'minimize' or 'maximize'; got {direction!r}.")
    name = cfg.scheduler["name"]
    if needs_metric(name) and direction is None and "mode" not in cfg.scheduler:
        raise ConfigError(
            f"Scheduler {name!r} is stepped with a metric and must know whether it should "
            "fall or rise: pass direction='minimize' (a loss) or 'maximize' (an accuracy)."
        )
    if cfg.warmup_epochs and steps_per_epoch is None:
        raise ConfigError(
            f"config['warmup_epochs']={cfg.warmup_epochs:g} needs steps_per_epoch (optimizer "
            "steps per epoch), which is unknown here; pass steps_per_epoch=... or put "
            "warmup_steps in the config instead."
        )
    if steps_per_epoch is not None:
        steps_per_epoch = check_steps(steps_per_epoch, "steps_per_epoch", low=1)
    optimizer = build_optimizer(model, cfg, cfg.base_lr())
    n_warmup = warmup_steps(cfg, steps_per_epoch or 0)
    name, options = scheduler_options(cfg, max(1, total_steps - n_warmup), direction or "minimize")
    after = create_lr_scheduler(optimizer, name, **options)
    return optimizer, scheduler_class(optimizer, n_warmup, after=after)


def metric_value(metrics: Mapping[str, Any], key: str, where: str, fix: str) -> float:
    """``metrics[key]`` as a float; a missing key is an error that lists the present ones."""
    if key not in metrics:
        present = ", ".join(sorted(map(str, metrics))) or "none"
        raise ConfigError(f"{where}: metric {key!r} was not logged (present: {present}); {fix}.")
    value = metrics[key]
    return float(value.item() if isinstance(value, torch.Tensor) else value)


class TrialReports:
    """The values one run reported to its trial, and the prune signal when it came.

    A framework's evaluation hook calls :meth:`report`; the prune signal is kept instead of
    raised there, so that the framework can end the run through its own stop flag, and is
    raised by :meth:`raise_if_pruned` after the run has returned.

    Args:
        trial: The hptune trial, or None to record without reporting.
        repeat_hint: The fix to suggest when a step is reported twice.
    """

    def __init__(self, trial: Trial | None, repeat_hint: str) -> None:
        self.trial = trial
        self.values: dict[int, float] = {}
        self.pruned: TrialPruned | None = None
        self._repeat_hint = repeat_hint

    def report(self, step: int, value: float) -> bool:
        """Record ``value`` at ``step`` and report it; True once the trial is pruned."""
        if self.pruned is not None:
            return True
        last = max(self.values, default=None)
        if last is not None and step <= last:
            raise ConfigError(
                f"step {step} reported after step {last}: each evaluation needs a later step "
                f"than the one before; {self._repeat_hint}."
            )
        self.values[step] = value
        if self.trial is None:
            return False
        try:
            self.trial.report(step, value)
        except TrialPruned as pruned:
            self.pruned = pruned
            return True
        return False

    def raise_if_pruned(self) -> None:
        """Raise the stored :class:`~hptune.TrialPruned`, if the pruner stopped the trial."""
        if self.pruned is not None:
            raise self.pruned


class ReportsView:
    """What every framework's ``PruningCallback`` offers on top of its :class:`TrialReports`
    (held as ``self._reports``): the values reported, whether the run was pruned, and the
    raise that turns a pruned run into a PRUNED trial."""

    _reports: TrialReports

    @property
    def values(self) -> dict[int, float]:
        """``{step: value}`` reported during the run."""
        return self._reports.values

    @property
    def pruned(self) -> bool:
        """Whether the trial's pruner has stopped this run."""
        return self._reports.pruned is not None

    def raise_if_pruned(self) -> None:
        """Raise :class:`~hptune.TrialPruned` if the pruner stopped the run; call it right
        after the trainer's ``fit``/``train`` returns, and let it propagate out of the
        objective."""
        self._reports.raise_if_pruned()
