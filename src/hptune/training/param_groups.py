"""Parameter groups: per-layer weight decay and LR multipliers, merged, with no decay on norms.

A parameter group is the dict ``torch.optim`` optimizers take: ``{"params": [...],
"weight_decay": ..., ...}``. :func:`param_groups` builds as few groups as the settings need
(one per distinct ``(weight_decay, lr_scale)``), never one per tensor, and by default exempts
biases, 1-D tensors and normalization layers from weight decay, the practice of BERT
(Devlin et al. 2018, arXiv 1810.04805) and of the "bag of tricks" (He et al. 2018,
arXiv 1812.01187, "no bias decay").

Matching rules (decay_map, lr_map, no_decay lists), in one place:

- a key that is an ``nn.Module`` subclass matches a parameter whose owning module is an
  instance of it (subclasses included);
- a string key is an ``fnmatch`` glob on the qualified parameter name, case-sensitive;
  ``*`` also crosses dots, so ``"encoder.*.weight"`` matches ``encoder.layers.0.weight``;
- a tied parameter (one tensor under several names, e.g. an embedding shared with the
  output layer) appears once, under its first name, and matches a key if any of its names
  or owners does;
- in a map, the first matching key wins; a key that matches no parameter of the model at
  all (trainable or frozen) is a ConfigError, since it is almost always a typo.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

from hptune._checks import Number, check
from hptune.exceptions import ConfigError

__all__ = [
    "apply_weight_decay_by_layer",
    "describe_param_groups",
    "is_norm_layer",
    "param_groups",
]

MapKey = type[nn.Module] | str
NoDecay = str | bool | None | Iterable[MapKey]

_NORM_BASES: tuple[type[nn.Module], ...] = tuple(
    cls
    for cls in (
        nn.modules.batchnorm._NormBase,  # BatchNorm*, SyncBatchNorm, InstanceNorm*
        nn.LayerNorm,
        nn.GroupNorm,
        nn.LocalResponseNorm,
        getattr(nn, "RMSNorm", None),  # torch >= 2.4
    )
    if cls is not None
)
# "Norm" closing the name, before a dimension suffix or before another capitalised word:
# RMSNorm, LlamaRMSNorm, LayerNorm2d, GroupNormAct; not NormalizedLinear or Normalize.
_NORM_NAME = re.compile(r"Norm(\d*d)?($|[A-Z_0-9])")
_GLOB_CHARS = re.compile(r"[*?\[]")


def is_norm_layer(module: nn.Module) -> bool:
    """Whether ``module`` is a normalization layer, whose parameters get no weight decay.

    True for torch's norm classes (BatchNorm*, SyncBatchNorm, InstanceNorm*, LayerNorm,
    GroupNorm, LocalResponseNorm, RMSNorm) and subclasses, and, as a fallback for custom
    layers, for a class whose name has ``Norm`` as a word: ``RMSNorm``, ``T5LayerNorm``,
    ``LayerNorm2d``, ``GroupNormAct`` (not ``NormalizedLinear``).

    Example:
        >>> is_norm_layer(nn.BatchNorm1d(4)), is_norm_layer(nn.Linear(2, 2))
        (True, False)
    """
    return isinstance(module, _NORM_BASES) or bool(_NORM_NAME.search(type(module).__name__))


@dataclass
class _Param:
    """One distinct trainable-or-frozen tensor with every name and owner it has."""

    tensor: nn.Parameter
    names: list[str]
    owners: list[nn.Module]
    module_names: list[str]


Matcher = Callable[[_Param], bool]


def _collect(model: nn.Module) -> list[_Param]:
    """Every distinct parameter of ``model`` in ``named_parameters`` order, aliases merged."""
    if not isinstance(model, nn.Module):
        raise ConfigError(
            f"model must be a torch.nn.Module; got {type(model).__name__}. "
            "Pass the model itself, not model.parameters()."
        )
    by_id: dict[int, _Param] = {}
    # remove_duplicate=False so tied tensors reveal all their names and owners.
    for mod_name, module in model.named_modules(remove_duplicate=False):
        for local, tensor in module.named_parameters(recurse=False, remove_duplicate=False):
            full = f"{mod_name}.{local}" if mod_name else local
            entry = by_id.setdefault(id(tensor), _Param(tensor, [], [], []))
            entry.names.append(full)
            entry.owners.append(module)
            entry.module_names.append(mod_name)
    return list(by_id.values())


def _type_matcher(cls: type[nn.Module]) -> Matcher:
    return lambda p: any(isinstance(owner, cls) for owner in p.owners)


def _glob_matcher(pattern: str) -> Matcher:
    return lambda p: any(fnmatch.fnmatchcase(name, pattern) for name in p.names)


def _key_matcher(key: Any, where: str) -> Matcher:
    """A matcher for a map key: an nn.Module subclass or a glob on parameter names."""
    if isinstance(key, type) and issubclass(key, nn.Module):
        return _type_matcher(key)
    if isinstance(key, str) and key:
        return _glob_matcher(key)
    raise ConfigError(
        f"{where} key {key!r} is neither an nn.Module subclass nor a glob string. "
        "Use a layer class such as nn.Linear or a pattern such as 'encoder.*.weight'."
    )


def _check_number(value: Any, where: str, *, positive: bool) -> float:
    fix = "use an LR multiplier such as 0.1" if positive else "use 0 for no decay, or e.g. 1e-4"
    return float(check(where, value, Number(low=0, low_open=positive), fix=fix))


def _compile_rules(
    mapping: Mapping[Any, Any] | None,
    params: list[_Param],
    where: str,
    *,
    positive: bool,
    compile_key: Callable[[Any, str], Matcher] = _key_matcher,
) -> list[tuple[Matcher, float]]:
    """Turn an ordered map into (matcher, value) rules, rejecting keys that match nothing."""
    if mapping is None:
        return []
    if not isinstance(mapping, Mapping):
        raise ConfigError(
            f"{where} must be a mapping such as {{nn.Linear: 0.01}}; got {mapping!r}."
        )
    rules = []
    for key, value in mapping.items():
        matcher = compile_key(key, where)
        number = _check_number(value, f"{where}[{key!r}]", positive=positive)
        if not any(matcher(p) for p in params):
            examples = ", ".join(p.names[0] for p in params[:4])
            raise ConfigError(
                f"{where} key {key!r} matches no parameter of the model (names look like "
                f"{examples}). Fix the pattern or layer type, or remove the key."
            )
        rules.append((matcher, number))
    return rules


def _auto_no_decay(p: _Param) -> bool:
    """Biases, 1-D tensors (gains, scales) and anything owned by a norm layer."""
    return (
        p.tensor.ndim <= 1
        or any(name.rsplit(".", 1)[-1] == "bias" for name in p.names)
        or any(is_norm_layer(owner) for owner in p.owners)
    )


def _no_decay_matcher(no_decay: NoDecay) -> Matcher:
    if no_decay == "auto":
        return _auto_no_decay
    if no_decay is None or no_decay is False:
        return lambda p: False
    if isinstance(no_decay, (str, bool)) or not isinstance(no_decay, Iterable):
        raise ConfigError(
            f"no_decay must be 'auto', False/None, or a list of layer types and globs; "
            f"got {no_decay!r}. Use e.g. no_decay=['auto', nn.Embedding]."
        )
    matchers = [
        _auto_no_decay if key == "auto" else _key_matcher(key, "no_decay") for key in no_decay
    ]
    return lambda p: any(m(p) for m in matchers)


def _first(rules: list[tuple[Matcher, float]], p: _Param, default: float) -> float:
    return next((value for matcher, value in rules if matcher(p)), default)


def _build_groups(
    params: list[_Param],
    weight_decay: float,
    decay_rules: list[tuple[Matcher, float]],
    lr_rules: list[tuple[Matcher, float]] | None,
    exempt: Matcher,
) -> list[dict[str, Any]]:
    """Merge trainable parameters by (weight_decay, lr_scale); decay groups first."""
    merged: dict[tuple[float, float], dict[str, Any]] = {}
    for p in params:
        if not p.tensor.requires_grad:
            continue
        decay = 0.0 if exempt(p) else _first(decay_rules, p, weight_decay)
        scale = _first(lr_rules or [], p, 1.0)
        group = merged.setdefault((decay, scale), {"params": [], "weight_decay": decay})
        if lr_rules is not None:
            group["lr_scale"] = scale
        group["params"].append(p.tensor)
        group.setdefault("param_names", []).append(p.names[0])
    # Stable sort keeps first-appearance order inside the decayed and the undecayed halves.
    return sorted(merged.values(), key=lambda g: g["weight_decay"] == 0.0)


def param_groups(
    model: nn.Module,
    weight_decay: float,
    *,
    decay_map: Mapping[MapKey, float] | None = None,
    lr_map: Mapping[MapKey, float] | None = None,
    no_decay: NoDecay = "auto",
) -> list[dict[str, Any]]:
    """Merged optimizer parameter groups with per-layer weight decay and LR multipliers.

    Each trainable parameter lands in exactly one group; frozen ones
    (``requires_grad=False``) in none. Groups are ordered decayed first, then undecayed,
    each by first appearance in ``model.named_parameters()``. Each group has ``params``,
    ``weight_decay``, ``param_names`` (a key torch itself keeps and saves in
    ``state_dict``) and, when ``lr_map`` is given, ``lr_scale``, which
    :func:`hptune.training.create_optimizer` turns into ``lr * lr_scale``. Key matching is
    described in the module docstring. Because torch wants ``param_names`` in all groups or
    in none, a group added later (unfrozen layers) names its parameters too:
    ``opt.add_param_group({"params": [p], "param_names": ["head.weight"]})``.

    Weight decay of a parameter: 0 if ``no_decay`` exempts it, else the value of the first
    matching ``decay_map`` key, else ``weight_decay``. The exemption wins over
    ``decay_map`` so that a broad key (``nn.Linear``) does not decay biases; pass
    ``no_decay=False`` or an explicit list to decay them.

    Args:
        model: The module whose parameters are grouped.
        weight_decay: Decay of parameters that no ``decay_map`` key matches.
        decay_map: Ordered ``{layer type or glob: weight decay}``; first match wins.
        lr_map: Ordered ``{layer type or glob: LR multiplier > 0}``; first match wins;
            unmatched parameters get 1.0.
        no_decay: ``"auto"`` (default): no decay on biases, tensors with ``ndim <= 1`` and
            parameters of normalization layers (:func:`is_norm_layer`); embeddings are
            decayed, as in nanoGPT. ``False``/``None``: no exemption. A list of layer types
            and globs (may include ``"auto"``, e.g. ``["auto", nn.Embedding]``): exactly
            those are exempt.

    Returns:
        A list of group dicts for any ``torch.optim`` optimizer.

    Example:
        >>> model = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 2))
        >>> groups = param_groups(model, 0.01, lr_map={"2.*": 0.1})
        >>> [(g["weight_decay"], g["lr_scale"], g["param_names"]) for g in groups]
        [(0.01, 1.0, ['0.weight']), (0.01, 0.1, ['2.weight']), (0.0, 1.0, ['0.bias', '1.weight', '1.bias']), (0.0, 0.1, ['2.bias'])]
    """
    weight_decay = _check_number(weight_decay, "weight_decay", positive=False)
    params = _collect(model)
    decay_rules = _compile_rules(decay_map, params, "decay_map", positive=False)
    lr_rules = None if lr_map is None else _compile_rules(lr_map, params, "lr_map", positive=True)
    return _build_groups(params, weight_decay, decay_rules, lr_rules, _no_decay_matcher(no_decay))


def _layer_kind(module: nn.Module) -> str:
    """Class name in lower case without a dimension suffix: Conv2d -> conv, BatchNorm1d -> batchnorm."""
    return re.sub(r"\d+d$", "", type(module).__name__).lower()


def _name_components(module_name: str) -> set[str]:
    """Qualified module-name parts, each also without trailing digits: 'conv1' -> conv1, conv."""
    parts = [part.lower() for part in module_name.split(".") if part]
    return set(parts) | {re.sub(r"_?\d+$", "", part) for part in parts}


def _layer_key_matcher(key: Any, where: str) -> Matcher:
    """Keys of :func:`apply_weight_decay_by_layer`: types and globs as in param_groups, plus
    bare words (see there)."""
    if not isinstance(key, str) or _GLOB_CHARS.search(key) or "." in key:
        return _key_matcher(key, where)
    word = key.lower()
    return lambda p: any(
        _layer_kind(owner) == word or word in _name_components(mod_name)
        for owner, mod_name in zip(p.owners, p.module_names)
    )


def apply_weight_decay_by_layer(
    model: nn.Module,
    weight_decay_map: Mapping[MapKey, float],
    *,
    default: float = 0.0,
    no_decay: NoDecay = "auto",
) -> list[dict[str, Any]]:
    """Weight decay per kind of layer: merged groups, whole-word matching, no norm decay.

    Keys are tried in order, first match wins. A layer type or a string with a glob
    character or a dot matches as in :func:`param_groups`. A bare word (``"conv"``) matches
    a parameter whose owning layer's *kind* is that word (class name, lower case, without a
    dimension suffix: ``Conv2d`` -> ``conv``, ``Linear`` -> ``linear``) or whose module path
    has that word as a whole component, trailing digits ignored (``"conv"`` matches
    ``features.conv1`` but not ``conv_proj`` or ``deconv``): matching substrings of the
    parameter name instead would miss a ``Linear`` named ``fc`` for ``'linear'`` and catch
    ``deconv`` for ``'conv'``. Unmatched parameters get ``default`` (0.0); biases, 1-D tensors
    and norm layers get none unless ``no_decay`` says otherwise.

    Args:
        model: The module whose parameters are grouped.
        weight_decay_map: Ordered ``{bare word, layer type or glob: weight decay}``.
        default: Decay of parameters no key matches.
        no_decay: As in :func:`param_groups`.

    Returns:
        Merged groups (``params``, ``weight_decay``, ``param_names``), e.g. for
        ``torch.optim.Adam(groups, lr=1e-3)``.

    Example:
        >>> model = nn.Sequential(nn.Conv1d(1, 4, 3), nn.Flatten(), nn.Linear(8, 2))
        >>> groups = apply_weight_decay_by_layer(model, {"conv": 0.001, "linear": 0.01})
        >>> [(g["weight_decay"], g["param_names"]) for g in groups]
        [(0.001, ['0.weight']), (0.01, ['2.weight']), (0.0, ['0.bias', '2.bias'])]
    """
    default = _check_number(default, "default", positive=False)
    params = _collect(model)
    rules = _compile_rules(
        weight_decay_map, params, "weight_decay_map", positive=False, compile_key=_layer_key_matcher
    )
    return _build_groups(params, default, rules, None, _no_decay_matcher(no_decay))


def describe_param_groups(groups: Iterable[Mapping[str, Any]]) -> str:
    """A plain-text table of parameter groups, one row per group.

    Works on the output of :func:`param_groups` and on ``optimizer.param_groups`` (then the
    ``lr`` column shows each group's learning rate).

    Example:
        >>> print(describe_param_groups(param_groups(nn.Linear(3, 2), 0.01)))
        group  weight_decay  lr_scale  tensors  params  names
        0      0.01          1         1        6       weight
        1      0             1         1        2       bias
    """
    groups = list(groups)
    has_lr = any("lr" in g for g in groups)
    header = [
        "group",
        "weight_decay",
        "lr_scale",
        *(["lr"] if has_lr else []),
        "tensors",
        "params",
        "names",
    ]
    rows = [header]
    for index, group in enumerate(groups):
        tensors = list(group["params"])
        names = list(group.get("param_names", []))
        shown = ", ".join(names[:3]) + (f", ... (+{len(names) - 3})" if len(names) > 3 else "")
        lr = [f"{group.get('lr', ''):g}" if "lr" in group else ""] if has_lr else []
        rows.append(
            [
                str(index),
                f"{group.get('weight_decay', 0.0):g}",
                f"{group.get('lr_scale', 1.0):g}",
                *lr,
                str(len(tensors)),
                str(sum(t.numel() for t in tensors)),
                shown,
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows
    )
