"""What the recipe would reject in a trial config, found without training: every problem with
the config key (and option) it belongs to, so a caller can point at the place to fix.

The checks run the recipe's own code (:func:`parse_config`, the optimizer and scheduler
factories on a one-parameter model), so they cannot drift from what a trial does.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from typing import Any

import torch

from hptune.exceptions import HptuneError, one_line
from hptune.training._recipe_config import (
    CONFIG_KEYS,
    RecipeConfig,
    build_optimizer,
    parse_config,
    scheduler_options,
)
from hptune.training.schedulers import create_lr_scheduler

#: ``(path, message)``: ``path`` is ``(key,)`` or ``(key, option)`` within the config.
ConfigProblem = tuple[tuple[str, ...], str]


def config_problems(config: Mapping[str, Any]) -> list[ConfigProblem]:
    """What the recipe rejects in ``config``, one problem per place, without training.

    Unknown keys; each key's value on its own; keys that conflict (both warmup forms); then
    the optimizer and the scheduler the config describes, built on a one-parameter model,
    each problem put on the first option that fails on its own (else on the key). The
    ``model`` section is the task's business and is not looked at.

    Example:
        >>> config_problems({"lr": -1, "optimizer": {"name": "sgd", "momentum": 2}})[0][0]
        ('lr',)
    """
    problems = [((str(key),), _unknown_key(key)) for key in config if key not in CONFIG_KEYS]
    known = {k: v for k, v in config.items() if k in CONFIG_KEYS and k != "model"}
    alone = [
        ((key,), _rejects(value, exc))
        for key, value in known.items()
        if (exc := _error(parse_config, {key: value}))
    ]
    if alone:
        return problems + alone
    try:
        cfg = parse_config(known)
    except HptuneError as exc:  # keys that conflict: both warmup forms
        return [*problems, (("warmup_steps",), str(exc))]
    for key, build in (("optimizer", _optimizer_of), ("scheduler", _scheduler_of)):
        exc = _error(build, cfg)
        if exc is not None:
            return [*problems, _blame(key, known, exc, build)]
    return problems


def _optimizer_of(cfg: RecipeConfig) -> Any:
    return build_optimizer(torch.nn.Linear(1, 1), cfg, cfg.base_lr())


def _scheduler_of(cfg: RecipeConfig) -> Any:
    name, options = scheduler_options(cfg, after_steps=10, direction="maximize")
    return create_lr_scheduler(_optimizer_of(cfg), name, **options)


def _blame(
    key: str, config: dict[str, Any], exc: BaseException, build: Callable[[RecipeConfig], Any]
) -> ConfigProblem:
    """The problem at ``key``: at its first option that fails on its own, else at the key."""
    value = config.get(key)
    if isinstance(value, dict):
        for option, setting in value.items():
            if option == "name":
                continue
            alone = {**config, key: {"name": value.get("name"), option: setting}}
            first = _error(lambda c: build(parse_config(c)), alone)
            if first is not None:
                return (key, str(option)), message_of(first)
    return (key,), message_of(exc)


def _error(action: Callable[[Any], Any], value: Any) -> BaseException | None:
    """The exception ``action(value)`` raises (what a trial would fail with), or None."""
    try:
        action(value)
    except Exception as exc:
        return exc
    return None


def message_of(exc: BaseException) -> str:
    """One line for a rejection: hptune's own message, or ``"Type: message"``."""
    return str(exc).strip() if isinstance(exc, HptuneError) else one_line(exc)


def _rejects(value: Any, exc: BaseException) -> str:
    if value is None or isinstance(value, dict):
        return message_of(exc)
    return f"the recipe rejects {value!r}: {message_of(exc)}"


def _unknown_key(key: Any) -> str:
    close = difflib.get_close_matches(str(key), list(CONFIG_KEYS), n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return (
        f"not a config key of the recipe: unknown key{hint}; valid: {', '.join(CONFIG_KEYS)} "
        "(options of your own model go under model:)"
    )
