"""How the recipe trains: the ``training:`` section of a spec, as one validated object.

:class:`TrainingOptions` is checked once, where it is built (from a spec's mapping, or in
Python), and passed as is to :func:`hptune.training.train` and into worker processes; no
layer in between checks it again. :meth:`TrainingOptions.problems` gives every problem of a
mapping with its key, so the spec can name the line of each.

Example:
    >>> TrainingOptions.from_mapping({"grad_clip": 1.0, "lr_scaling": "none"}).grad_clip
    1.0
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from typing import Any

from hptune._checks import Bool, Int, Number, OneOf, Pattern, Rule, optional, violation
from hptune.exceptions import ConfigError

_DEVICE = Pattern(r"auto|cpu|cuda(:\d+)?", "'auto', 'cpu', 'cuda' or 'cuda:N'")


def _option(default: Any, rule: Rule, help: str) -> Any:
    return dataclasses.field(default=default, metadata={"rule": rule, "help": help})


@dataclasses.dataclass(frozen=True)
class TrainingOptions:
    """The recipe's options: how to train, as opposed to the hyperparameters being tuned.

    Args:
        max_micro_batch: Largest micro-batch; the effective batch is accumulated from
            micro-batches of at most this size (BatchNorm models then differ slightly).
        grad_clip: Clip the global gradient norm (after AMP unscaling); a trial config's
            ``grad_clip`` wins over it.
        amp: float16 autocast with a GradScaler on CUDA; ignored (logged) on the CPU.
        lr_scaling: ``"none"``, ``"linear"`` (Goyal et al. 2017) or ``"sqrt"``: scale the LR
            by ``batch_size / base_batch_size``.
        base_batch_size: The batch size a config's ``lr`` refers to, for ``lr_scaling``.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:N"``.
        save_best: Keep the best epoch's weights (``TrainResult.best_state``); a study run
            from a spec also saves them in its output folder.
        divergence_factor: Stop with :class:`~hptune.trial.TrialDiverged` when the running
            training loss exceeds this times the first step's loss (NaN/inf always stops).
            The losses are read from the device every 16 optimizer steps and at each
            epoch's end, so a run stops at most 15 steps after the step it names.
        fit_micro_batch: On CUDA, cap micro-batches at the largest that fits in memory.

    Raises:
        ConfigError: A value breaks its rule; the message names the option and the fix.
    """

    max_micro_batch: int | None = _option(
        None, optional(Int(low=1)), "largest micro-batch; accumulate up to the effective batch"
    )
    grad_clip: float | None = _option(
        None, optional(Number(low=0, low_open=True)), "clip the global gradient norm"
    )
    amp: bool = _option(False, Bool(), "mixed precision on GPU (ignored on CPU)")
    lr_scaling: str = _option(
        "none",
        OneOf(("none", "linear", "sqrt")),
        "scale lr with batch_size / base_batch_size",
    )
    base_batch_size: int | None = _option(
        None, optional(Int(low=1)), "the batch size the lr refers to when lr_scaling is set"
    )
    device: str = _option("auto", _DEVICE, "where to train")
    save_best: bool = _option(False, Bool(), "keep the best epoch's weights")
    divergence_factor: float = _option(
        10.0,
        Number(low=1, low_open=True),
        "stop when the loss exceeds this times its first value",
    )
    fit_micro_batch: bool = _option(
        False, Bool(), "on GPU, find the largest micro-batch that fits in memory"
    )

    def __post_init__(self) -> None:
        problems = self.problems(dataclasses.asdict(self))
        if problems:
            raise ConfigError(_sentence(*problems[0]))

    @classmethod
    def describe(cls) -> dict[str, str]:
        """Each option with its rule and meaning (for help texts and unknown-key errors)."""
        return {
            f.name: f"{f.metadata['rule']}: {f.metadata['help']}" for f in dataclasses.fields(cls)
        }

    @classmethod
    def problems(cls, mapping: Mapping[str, Any]) -> list[tuple[str, str]]:
        """``(option, what is wrong)`` for every problem of ``mapping``, unknown options
        included; empty when :meth:`from_mapping` would accept it."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        found = []
        for key, value in mapping.items():
            if key not in fields:
                close = difflib.get_close_matches(str(key), list(fields), n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                found.append((str(key), f"unknown option{hint}; valid: {', '.join(fields)}"))
                continue
            message = violation(value, fields[key].metadata["rule"])
            if message is not None:
                found.append((key, message))
        if (
            mapping.get("lr_scaling") in ("linear", "sqrt")
            and mapping.get("base_batch_size") is None
        ):
            found.append(
                (
                    "lr_scaling",
                    f"{mapping['lr_scaling']!r} needs base_batch_size, the batch size the lr "
                    "refers to; set base_batch_size",
                )
            )
        return found

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any] | None) -> TrainingOptions:
        """Build from a mapping (a spec's ``training:``); missing options take defaults.

        Raises:
            ConfigError: The first problem :meth:`problems` finds.
        """
        mapping = dict(mapping or {})
        problems = cls.problems(mapping)
        if problems:
            raise ConfigError(_sentence(*problems[0]))
        return cls(**mapping)

    def to_mapping(self) -> dict[str, Any]:
        """The options that differ from their defaults (what a spec would write)."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != f.default
        }

    def replace(self, **changes: Any) -> TrainingOptions:
        """A copy with ``changes`` applied, checked again."""
        return dataclasses.replace(self, **changes)


def _sentence(key: str, message: str) -> str:
    return f"training option {key!r}: {message}."
