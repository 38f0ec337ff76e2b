"""YAML for specs: the document's value, and the line of every key path in it for errors."""

from __future__ import annotations

import re
from typing import Any

import yaml

from hptune.exceptions import SpecError

# A space form not already inside quotes: uniform(...), loguniform(...), randint(...), choice(...)
_FORM = re.compile(
    r"(?<![\w'\"])(?:log)?uniform\([^()]*\)|(?<![\w'\"])(?:randint|choice)\([^()]*\)"
)
_SCI_FLOAT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")


def _scalar(node: yaml.Node) -> Any:
    return yaml.SafeLoader("").construct_object(node, deep=True)


def _to_python(node: yaml.Node, path: tuple[str, ...], lines: dict[tuple[str, ...], int]) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node)
            sub = (*path, str(key))
            lines[sub] = key_node.start_mark.line + 1
            if key in out:
                raise SpecError([f"line {lines[sub]}: {'.'.join(sub)}: duplicate key"])
            out[key] = _to_python(value_node, sub, lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(v, (*path, str(i)), lines) for i, v in enumerate(node.value)]
    value = _scalar(node)
    # YAML 1.1 (PyYAML) reads a plain 1e-4 as a string; every user means the number.
    if isinstance(value, str) and node.style is None and _SCI_FLOAT.match(value):
        return float(value)
    return value


def _quote_forms(text: str) -> str:
    """Quote unquoted space forms so YAML keeps their commas.

    In a flow mapping, ``{beta1: uniform(0.85, 0.95)}`` would otherwise split at the comma
    into ``beta1: "uniform(0.85"`` and a stray key. Quoting stays on the same line, so line
    numbers in errors are unchanged.
    """
    return _FORM.sub(lambda m: "'" + m.group(0).replace("'", "''") + "'", text)


def load_yaml(text: str, source: str) -> tuple[Any, dict[tuple[str, ...], int]]:
    """The value of the YAML document ``text`` and the line of each key path in it."""
    try:
        node = yaml.compose(_quote_forms(text), Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError([f"{where}: not valid YAML: {problem}"]) from exc
    if node is None:
        raise SpecError([f"{source}: the spec is empty; it needs at least 'task' and 'space'"])
    lines: dict[tuple[str, ...], int] = {}
    return _to_python(node, (), lines), lines
