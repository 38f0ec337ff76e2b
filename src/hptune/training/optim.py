"""Optimizer registry and factory: names from a config become ``torch.optim`` optimizers.

Names go through one registry, in the manner of timm's ``OptimizerRegistry``:
:func:`register_optimizer`, :func:`list_optimizers`, :func:`get_optimizer_info`. Names are
case-insensitive and ``-``/``_`` are interchangeable (``"sgd-nesterov"`` is
``"sgd_nesterov"``). Options keep torch's names (``momentum``, ``nesterov``, ``betas``,
``eps``, ``alpha``, ...); ``beta1``/``beta2`` are accepted for optimizers with ``betas``, as
search spaces tune them one at a time.

Built in:

- ``adam`` (Kingma & Ba 2014, arXiv 1412.6980): ``weight_decay`` is the classic L2 penalty,
  added to the gradient before the adaptive scaling ("coupled").
- ``adamw`` (Loshchilov & Hutter 2017, arXiv 1711.05101): ``weight_decay`` is decoupled,
  ``p -= lr * weight_decay * p`` beside the Adam step. Prefer it when tuning decay.
- ``sgd``: momentum defaults to 0.9 (the value most SGD recipes use; torch's own default
  is 0); pass ``momentum=0`` for plain SGD. ``weight_decay`` is L2, which for SGD equals decoupled decay
  scaled by the LR.
- ``sgd_nesterov`` (alias ``nesterov``): SGD with ``nesterov=True``, momentum 0.9
  (Sutskever et al. 2013).
- ``rmsprop`` (Tieleman & Hinton 2012), ``adagrad`` (Duchi et al. 2011), ``radam``
  (Liu et al. 2019, arXiv 1908.03265), ``nadam`` (Dozat 2016), ``adamax`` (Kingma & Ba 2014).

``weight_decay`` defaults to 0.0 for every optimizer, AdamW included (torch's AdamW
defaults to 0.01): the value is always the one you pass, so searches compare like with like.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Real
from types import MappingProxyType
from typing import Any

import torch
from torch import nn

from hptune._checks import Bool, Number, Rule, check, optional
from hptune.exceptions import ConfigError
from hptune.training.param_groups import NoDecay, param_groups

__all__ = [
    "OptimizerInfo",
    "create_optimizer",
    "create_optimizer_from_config",
    "get_optimizer_info",
    "list_optimizers",
    "register_optimizer",
]

Validator = Callable[[Mapping[str, Any]], None]
_FRAMEWORK_ARGS = ("self", "params", "lr", "weight_decay")
_BETA_ALIASES = ("beta1", "beta2")


@dataclass(frozen=True)
class OptimizerInfo:
    """A registered optimizer.

    Args:
        name: Canonical name (lower case, underscores).
        cls: The ``torch.optim.Optimizer`` subclass.
        defaults: hptune's defaults, applied under the user's options (``sgd``: momentum 0.9).
        default_lr: LR used when ``create_optimizer`` gets ``lr=None``.
        options: Option names accepted, ``beta1``/``beta2`` included where they apply.
        validators: Cross-option checks, each ``validator(options)`` raising ConfigError.
        aliases: Other names that resolve to this one.
        description: One line for listings.
        signature_defaults: Torch's own default of every option, from ``cls.__init__``.

    Example:
        >>> get_optimizer_info("SGD-Nesterov").defaults["nesterov"]
        True
    """

    name: str
    cls: type[torch.optim.Optimizer]
    defaults: Mapping[str, Any]
    default_lr: float
    options: tuple[str, ...]
    validators: tuple[Validator, ...] = ()
    aliases: tuple[str, ...] = ()
    description: str = ""
    signature_defaults: Mapping[str, Any] = field(default_factory=dict, repr=False)


_REGISTRY: dict[str, OptimizerInfo] = {}


def _normalize(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def register_optimizer(
    name: str,
    cls: type[torch.optim.Optimizer],
    defaults: Mapping[str, Any] | None = None,
    *,
    validators: Sequence[Validator] = (),
    aliases: Sequence[str] = (),
    default_lr: float | None = None,
    description: str = "",
    overwrite: bool = False,
) -> OptimizerInfo:
    """Make ``name`` (and its aliases) usable by :func:`create_optimizer` and in specs.

    The accepted options are read from ``cls.__init__``'s signature (all but ``params``,
    ``lr`` and ``weight_decay``); range checks for known names (momentum, betas, eps, ...)
    apply to every optimizer, ``validators`` add checks across options.

    Example:
        >>> info = register_optimizer("asgd", torch.optim.ASGD)  # doctest: +SKIP
        >>> "lambd" in info.options  # doctest: +SKIP
        True
    """
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"Optimizer name must be a non-empty string; got {name!r}.")
    if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)):
        raise ConfigError(
            f"Optimizer {name!r}: cls must be a torch.optim.Optimizer subclass; got {cls!r}."
        )
    signature = {
        key: p.default
        for key, p in inspect.signature(cls.__init__).parameters.items()
        if key not in _FRAMEWORK_ARGS and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }
    defaults = dict(defaults or {})
    unknown = sorted(set(defaults) - set(signature))
    if unknown:
        raise ConfigError(
            f"Optimizer {name!r}: defaults {unknown} are not options of {cls.__name__}."
        )
    sig_lr = inspect.signature(cls.__init__).parameters.get("lr")
    lr = default_lr if default_lr is not None else getattr(sig_lr, "default", None)
    options = tuple(signature) + (_BETA_ALIASES if "betas" in signature else ())
    info = OptimizerInfo(
        name=_normalize(name),
        cls=cls,
        defaults=MappingProxyType(defaults),
        default_lr=lr if isinstance(lr, Real) else 1e-3,
        options=options,
        validators=tuple(validators),
        aliases=tuple(_normalize(a) for a in aliases),
        description=description,
        signature_defaults=MappingProxyType(signature),
    )
    for key in (info.name, *info.aliases):
        if key in _REGISTRY and not overwrite:
            raise ConfigError(
                f"Optimizer name {key!r} is already registered; pass overwrite=True to replace it."
            )
    for key in (info.name, *info.aliases):
        _REGISTRY[key] = info
    return info


def list_optimizers() -> list[str]:
    """Canonical names of the registered optimizers, sorted (aliases left out).

    Example:
        >>> {"adam", "adamw", "sgd"} <= set(list_optimizers())
        True
    """
    return sorted(key for key, info in _REGISTRY.items() if key == info.name)


def get_optimizer_info(name: str) -> OptimizerInfo:
    """The registry entry for ``name`` or one of its aliases; ConfigError listing valid names."""
    info = _REGISTRY.get(_normalize(name)) if isinstance(name, str) else None
    if info is None:
        aliases = sorted(key for key, i in _REGISTRY.items() if key != i.name)
        raise ConfigError(
            f"Unknown optimizer {name!r}. Valid optimizers: {', '.join(list_optimizers())} "
            f"(aliases: {', '.join(aliases)}; '-' and '_' are interchangeable). "
            "Add others with register_optimizer()."
        )
    return info


_UNIT = Number(0, 1, high_open=True)
# Range rules by option name, shared by every optimizer that has the option.
_RANGES: dict[str, tuple[Rule, str]] = {
    "momentum": (_UNIT, "use e.g. 0.9, or 0 to disable momentum"),
    "dampening": (Number(0, 1), "use 0, the usual value"),
    "eps": (Number(low=0, low_open=True), "use e.g. 1e-8"),
    "alpha": (_UNIT, "use e.g. 0.99"),
    "lr_decay": (Number(low=0), "use 0 to disable it"),
    "initial_accumulator_value": (Number(low=0), "use 0"),
    "momentum_decay": (Number(low=0), "use e.g. 0.004"),
}


def _check_option(info: OptimizerInfo, key: str, value: Any) -> None:
    where = f"optimizer {info.name!r}: {key}"
    if key in _RANGES:
        rule, fix = _RANGES[key]
        check(where, value, rule, fix=fix)
    elif key == "betas":
        pair = tuple(value) if isinstance(value, (tuple, list)) else ()
        if len(pair) != 2 or not all(_UNIT.accepts(b) for b in pair):
            raise ConfigError(
                f"{where} must be a pair of numbers in [0, 1), got {value!r}; use e.g. "
                "(0.9, 0.999), or beta1=/beta2= separately."
            )
    elif key in ("foreach", "fused"):
        check(where, value, optional(Bool()))
    elif isinstance(info.signature_defaults.get(key), bool):
        check(where, value, Bool())


def _resolve_options(info: OptimizerInfo, options: Mapping[str, Any]) -> dict[str, Any]:
    """User options checked, beta1/beta2 folded into betas, hptune defaults filled in."""
    unknown = [key for key in options if key not in info.options]
    if unknown:
        raise ConfigError(
            f"Unknown option {unknown[0]!r} for optimizer {info.name!r}. Valid options: "
            f"{', '.join(info.options)}. (lr and weight_decay are arguments of create_optimizer.)"
        )
    resolved = {**info.defaults, **options}
    given = [b for b in _BETA_ALIASES if b in resolved]
    if given:
        if "betas" in options:
            raise ConfigError(
                f"Optimizer {info.name!r} got both betas and {'/'.join(given)}; pass one form."
            )
        betas = list(resolved.get("betas", info.signature_defaults["betas"]))
        for index, key in enumerate(_BETA_ALIASES):
            if key in resolved:
                betas[index] = resolved.pop(key)
        resolved["betas"] = tuple(betas)
    for key, value in resolved.items():
        _check_option(info, key, value)
    if "betas" in resolved:
        resolved["betas"] = tuple(resolved["betas"])  # YAML gives a list; torch documents a tuple
    for validator in info.validators:
        validator(resolved)
    return resolved


def _check_nesterov(options: Mapping[str, Any]) -> None:
    if not options.get("nesterov"):
        return
    momentum, dampening = options.get("momentum", 0), options.get("dampening", 0)
    if momentum <= 0 or dampening != 0:
        raise ConfigError(
            f"nesterov=True needs momentum > 0 and dampening = 0; got momentum={momentum!r}, "
            f"dampening={dampening!r}. Set momentum (e.g. 0.9) or nesterov=False."
        )


def _check_positive(value: Any, where: str, fix: str) -> float:
    return float(check(where, value, Number(low=0, low_open=True), fix=f"use {fix}"))


def _check_decay(value: Any, where: str) -> float:
    return float(check(where, value, Number(low=0), fix="use 0 for no decay, or e.g. 1e-4"))


def _prepare_group(group: Mapping[str, Any], index: int, lr: float) -> dict[str, Any]:
    """A copy of a user group with its own lr / weight_decay checked and lr_scale applied."""
    where = f"parameter group {index}"
    if "params" not in group:
        raise ConfigError(f"{where} has no 'params' key; each group is {{'params': [...], ...}}.")
    out = dict(group)
    out["params"] = (
        list(group["params"]) if not torch.is_tensor(group["params"]) else [group["params"]]
    )
    if "weight_decay" in out:
        out["weight_decay"] = _check_decay(out["weight_decay"], f"{where} weight_decay")
    if "lr" in out and "lr_scale" in out:
        raise ConfigError(f"{where} sets both 'lr' and 'lr_scale'; keep one of them.")
    if "lr" in out:
        out["lr"] = _check_positive(out["lr"], f"{where} lr", "e.g. 1e-3")
    if "lr_scale" in out:
        # Stored as lr so schedulers, which scale each group's own initial lr, keep the ratio.
        scale = _check_positive(
            out["lr_scale"], f"{where} lr_scale", "an LR multiplier such as 0.1"
        )
        out["lr"] = lr * scale
    return out


def _resolve_groups(
    model_or_groups: nn.Module | Iterable[Any], weight_decay: float, lr: float, no_decay: NoDecay
) -> list[Any]:
    if isinstance(model_or_groups, nn.Module):
        items: list[Any] = param_groups(model_or_groups, weight_decay, no_decay=no_decay)
        if not items:
            raise ConfigError(
                f"{type(model_or_groups).__name__} has no trainable parameters (all have "
                "requires_grad=False?); unfreeze some before creating an optimizer."
            )
    elif torch.is_tensor(model_or_groups) or not isinstance(model_or_groups, Iterable):
        raise ConfigError(
            f"model_or_groups must be an nn.Module, an iterable of parameters or a list of "
            f"parameter-group dicts; got {type(model_or_groups).__name__}."
        )
    else:
        items = list(model_or_groups)
    if not items:
        raise ConfigError("model_or_groups is empty; pass a model or at least one parameter.")
    if all(isinstance(item, Mapping) for item in items):
        return [_prepare_group(group, i, lr) for i, group in enumerate(items)]
    if all(torch.is_tensor(item) for item in items):
        return items
    raise ConfigError(
        "model_or_groups mixes parameter tensors and group dicts (or holds neither); "
        "pass either parameters or a list of {'params': ...} dicts."
    )


def create_optimizer(
    model_or_groups: nn.Module | Iterable[Any],
    name: str = "adam",
    lr: float | None = None,
    weight_decay: float = 0.0,
    *,
    no_decay: NoDecay = "auto",
    **options: Any,
) -> torch.optim.Optimizer:
    """Build the registered optimizer ``name`` with checked options.

    Parameters come from:

    - an ``nn.Module``: groups from :func:`~hptune.training.param_groups.param_groups`
      ``(model, weight_decay, no_decay=no_decay)``, so biases, 1-D tensors and norm layers
      get no weight decay by default (``no_decay=False`` decays everything);
    - an iterable of parameters: one group, every tensor decayed by ``weight_decay``;
    - a list of group dicts: each group's own ``weight_decay`` and ``lr`` are kept, a group
      ``lr_scale`` becomes ``lr * lr_scale`` (the key stays in the group, for reading).

    Args:
        model_or_groups: Model, parameters or parameter groups.
        name: A registered name (:func:`list_optimizers`); case and ``-``/``_`` free.
        lr: Learning rate > 0; None takes the optimizer's default (adam 1e-3, sgd 0.01).
        weight_decay: Decay >= 0 for groups that set none. See the module docstring for
            what it means for Adam (L2) vs AdamW (decoupled).
        no_decay: Passed to ``param_groups`` when a module is given, ignored otherwise.
        **options: Optimizer options under torch's names, plus ``beta1``/``beta2``.

    Returns:
        The ``torch.optim.Optimizer``.

    Example:
        >>> model = nn.Linear(3, 1)
        >>> opt = create_optimizer(model, "sgd", lr=0.1, weight_decay=1e-4, nesterov=True)
        >>> [(g["weight_decay"], g["momentum"], g["nesterov"]) for g in opt.param_groups]
        [(0.0001, 0.9, True), (0.0, 0.9, True)]
    """
    info = get_optimizer_info(name)
    lr = info.default_lr if lr is None else _check_positive(lr, "lr", "e.g. 1e-3")
    weight_decay = _check_decay(weight_decay, "weight_decay")
    resolved = _resolve_options(info, options)
    groups = _resolve_groups(model_or_groups, weight_decay, lr, no_decay)
    return info.cls(groups, lr=lr, weight_decay=weight_decay, **resolved)


def create_optimizer_from_config(
    model_or_groups: nn.Module | Iterable[Any],
    config: str | Mapping[str, Any],
    lr: float | None = None,
    weight_decay: float = 0.0,
    *,
    no_decay: NoDecay = "auto",
) -> torch.optim.Optimizer:
    """:func:`create_optimizer` from a trial config's optimizer entry.

    ``config`` is a name (``"adamw"``) or a dict with ``name`` and options, as a sampled
    conditional space gives it: ``{"name": "sgd", "momentum": 0.9, "nesterov": True}``.

    Example:
        >>> opt = create_optimizer_from_config(nn.Linear(2, 1), {"name": "adam", "beta1": 0.85}, lr=0.01)
        >>> opt.param_groups[0]["betas"]
        (0.85, 0.999)
    """
    if isinstance(config, str):
        return create_optimizer(model_or_groups, config, lr, weight_decay, no_decay=no_decay)
    if not isinstance(config, Mapping) or "name" not in config:
        raise ConfigError(
            f"Optimizer config must be a name or a dict with a 'name' key; got {config!r}. "
            "Use e.g. {'name': 'sgd', 'momentum': 0.9}."
        )
    options = {key: value for key, value in config.items() if key != "name"}
    return create_optimizer(
        model_or_groups, config["name"], lr, weight_decay, no_decay=no_decay, **options
    )


register_optimizer("adam", torch.optim.Adam, description="Adam; weight_decay is coupled L2")
register_optimizer("adamw", torch.optim.AdamW, description="Adam with decoupled weight decay")
register_optimizer(
    "sgd",
    torch.optim.SGD,
    {"momentum": 0.9},
    validators=[_check_nesterov],
    default_lr=0.01,
    description="SGD, momentum 0.9 by default",
)
register_optimizer(
    "sgd_nesterov",
    torch.optim.SGD,
    {"momentum": 0.9, "nesterov": True},
    validators=[_check_nesterov],
    aliases=["nesterov"],
    default_lr=0.01,
    description="SGD with Nesterov momentum 0.9",
)
register_optimizer("rmsprop", torch.optim.RMSprop, description="RMSprop")
register_optimizer("adagrad", torch.optim.Adagrad, description="Adagrad")
register_optimizer("radam", torch.optim.RAdam, description="Rectified Adam")
register_optimizer("nadam", torch.optim.NAdam, description="Adam with Nesterov momentum")
register_optimizer("adamax", torch.optim.Adamax, description="Adam with the infinity norm")
