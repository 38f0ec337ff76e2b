"""Reading a space written as data: string forms and the mapping forms of YAML/JSON.

``parse_form("loguniform(1e-4, 1e-1)")`` reads the string form with Python's ``ast`` and
accepts only literal arguments (numbers, quoted strings, ``true/false/null`` or
``True/False/None``, lists): nothing is ever evaluated. :func:`normalize` turns a whole
user mapping into the tree a :class:`~hptune.space.Space` holds, naming the parameter path
in every error.
"""

from __future__ import annotations

import ast
import difflib
import math
import numbers
import re
from collections.abc import Callable, Mapping
from typing import Any

from hptune.exceptions import ConfigError
from hptune.space._base import Dimension
from hptune.space._categorical import Conditional, choice
from hptune.space._numeric import loguniform, randint, uniform

FORMS: dict[str, Callable[..., Dimension]] = {
    "choice": choice,
    "loguniform": loguniform,
    "randint": randint,
    "uniform": uniform,
}
_EXAMPLES = {
    "choice": "choice(32, 64, 128) or choice('relu', 'gelu')",
    "loguniform": "loguniform(1e-4, 1e-1)",
    "randint": "randint(0, 5)",
    "uniform": "uniform(0.85, 0.95)",
}
_WORDS = {"true": True, "True": True, "false": False, "False": False, "null": None, "None": None}
#: Distributions of Hyperopt, Ray Tune and Optuna that hptune has no form for: a string
#: calling one is a search dimension gone wrong, not text (it once became a constant).
_OTHER_FORMS = frozenset({
    "normal", "lognormal", "qnormal", "qlognormal", "quniform", "qloguniform", "qrandint",
    "lograndint", "qlograndint", "randn", "qrandn", "uniformint", "grid_search",
    "sample_from", "suggest_float", "suggest_int", "suggest_categorical", "pchoice",
})  # fmt: skip
_CALL = re.compile(r"\s*([A-Za-z_]\w*)\s*\(")
_MAX_NESTING = 50  # of literal arguments: [[1]] nests 2; a deeper one is not a value


def parse_form(text: str) -> Dimension | None:
    """The dimension a string form describes, or ``None`` when ``text`` is plain text.

    A string is a form when it starts with a form name and ``(``; a malformed form, or a
    near miss of a form name (``"logunifrom(1, 2)"``), is an error rather than text.

    Example:
        >>> parse_form("randint(0, 5)")
        randint(0, 5)
        >>> parse_form("relu") is None
        True
    """
    match = _CALL.match(text)
    if match is None:
        return None
    name = match.group(1)
    if name not in FORMS:
        close = difflib.get_close_matches(name.lower(), FORMS, n=1, cutoff=0.75)
        if not close and name.lower() not in _OTHER_FORMS:
            return None  # "f(x)"-like text that is not trying to be a form
        if not close:  # lognormal(1e-3, 1e-1): a distribution hptune lacks, not text
            raise ConfigError(
                f"{text!r}: {name!r} is a distribution of another library, not one of "
                f"hptune's forms ({', '.join(sorted(FORMS))}); for this text as a "
                f"constant, write choice({text!r})."
            )
        raise ConfigError(
            f"{text!r}: unknown form {name!r}; did you mean {close[0]}(...)? "
            f"Known forms: {', '.join(sorted(FORMS))}."
        )
    args, kwargs = _arguments(text, name)
    try:
        return FORMS[name](*args, **kwargs)
    except TypeError as error:  # wrong number or names of arguments
        raise ConfigError(f"{text!r}: {error}; write it like {_EXAMPLES[name]}.") from None


def _arguments(text: str, name: str) -> tuple[list[Any], dict[str, Any]]:
    malformed = f"{text!r}: malformed {name}(...) form; write it like {_EXAMPLES[name]}."
    try:
        call = ast.parse(text.strip(), mode="eval").body
    except (SyntaxError, MemoryError, RecursionError):  # CPython's "too complex" is the latter two
        raise ConfigError(malformed) from None
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)):
        raise ConfigError(malformed)  # e.g. "uniform(0, 1) * 2"
    if any(keyword.arg is None for keyword in call.keywords):
        raise ConfigError(malformed)
    args = [_literal(node, text) for node in call.args]
    return args, {kw.arg: _literal(kw.value, text) for kw in call.keywords if kw.arg}


def _literal(node: ast.expr, text: str, depth: int = 0) -> Any:
    """The value of a literal argument node; anything else is refused, never evaluated."""
    if depth > _MAX_NESTING:
        raise ConfigError(f"{text!r}: arguments nest more than {_MAX_NESTING} levels deep.")
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str)):
        return node.value  # bool and None are Constants too, and ints cover bools
    if isinstance(node, ast.Constant) and node.value is None:
        return None
    if isinstance(node, ast.Name) and node.id in _WORDS:
        return _WORDS[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _literal(node.operand, text, depth + 1)
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_literal(item, text, depth + 1) for item in node.elts]
    if isinstance(node, ast.Name):
        raise ConfigError(
            f"{text!r}: {node.id!r} is not a value; quote strings ('{node.id}') and write "
            "booleans as true/false."
        )
    raise ConfigError(
        f"{text!r}: arguments must be literals (numbers, quoted strings, true/false/null, "
        f"[lists]), got {ast.get_source_segment(text.strip(), node)!r}."  # unparse() recurses
    )


def normalize(mapping: Mapping[str, Any], path: str) -> dict[str, Any]:
    """The tree for a (sub-)space mapping: each value a Dimension, a sub-tree (dict) or a
    constant. ``path`` is the dotted parameter path of ``mapping`` ('' at the root)."""
    tree = {}
    for key, value in mapping.items():
        if not isinstance(key, str) or not key or "." in key:
            where = f"space.{path}" if path else "space"
            raise _located(
                f"{where}: keys must be non-empty strings without '.', got {key!r}; "
                "nest a mapping instead of a dotted key (model: {width: ...})."
            )
        tree[key] = _node(value, f"{path}.{key}" if path else key)
    return tree


def _node(value: Any, path: str) -> Any:
    try:
        if isinstance(value, Conditional):
            return _conditional(value.branches, path)
        if isinstance(value, Dimension):
            return value
        if isinstance(value, str):
            form = parse_form(value)
            return value if form is None else form
        if isinstance(value, list):
            return choice(*value)
        if isinstance(value, Mapping):
            return _mapping(value, path)
        return constant(value)
    except ConfigError as error:
        if getattr(error, "located", False):
            raise
        raise _located(f"space.{path}: {error}") from None


def _located(message: str) -> ConfigError:
    """A ConfigError whose message already names its path, so outer levels pass it on."""
    error = ConfigError(message)
    error.located = True  # type: ignore[attr-defined]
    return error


def _mapping(value: Mapping[str, Any], path: str) -> Any:
    """The single-key forms ``{"choice": {...}}`` (conditional), ``{"choice": [...]}`` and
    ``{"constant": ...}``; any other mapping is a nested sub-space."""
    if len(value) == 1 and "choice" in value:
        inner = value["choice"]
        if isinstance(inner, Mapping):
            return _conditional(choice(inner).branches, path)
        if isinstance(inner, list):
            return choice(*inner)
    if len(value) == 1 and "constant" in value:
        return constant(value["constant"])
    return normalize(value, path)


def _conditional(branches: Mapping[str, Any], path: str) -> Conditional:
    checked = Conditional(branches)  # validates the branch names before their paths are used
    return Conditional(
        {name: normalize(b, f"{path}.{name}") for name, b in checked.branches.items()}
    )


def constant(value: Any) -> Any:
    """``value`` as a space constant: None, bool, int, float, str, or a tuple of these (a
    list would mean choice). Lists inside a tuple become tuples so that a constant is
    immutable and compares equal after a JSON round trip."""
    if isinstance(value, (tuple, list)):
        return tuple(constant(item) for item in value)
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real) and math.isfinite(value):
        return float(value)
    raise ConfigError(
        f"constant {value!r} ({type(value).__name__}) is not supported: constants must be "
        "None, bool, int, finite float, str or a tuple of them, so that the space can be "
        "recorded as JSON; refer to objects by name (e.g. 'relu')."
    )
