"""The layering of docs/architecture.md, checked on the source: no import circle anywhere in
src/hptune, and each low layer imports only what it may.

Every import counts, at module level or inside a function (a lazy import still ties the two
modules together), ``TYPE_CHECKING`` ones included. ``from package import name`` counts as
an import of ``package.name`` when that is a module, else of ``package`` itself. Run it
alone with ``python -m pytest tests/test_architecture.py``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in (SRC / "hptune").rglob("*.py")}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The hptune modules ``name`` imports."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                child = f"{base}.{alias.name}"
                found.add(child if child in known else base)
    return {m for m in found if m in known and m != name}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_there_is_no_import_circle_in_src():
    assert _cycles(_graph()) == []


def test_the_cycle_finder_finds_a_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


#: What each low layer may import from hptune (besides its own package).
ALLOWED = {
    "hptune.exceptions": set(),
    "hptune._defaults": set(),
    "hptune._checks": {"hptune.exceptions"},
    "hptune.metrics": {"hptune.exceptions"},
    "hptune.trial": {"hptune.exceptions", "hptune._checks"},
    "hptune.training": {"hptune.exceptions", "hptune._checks", "hptune.metrics", "hptune.trial"},
    "hptune.space": {"hptune.exceptions", "hptune._checks"},
    "hptune.tasks": {"hptune.exceptions", "hptune._checks", "hptune.metrics", "hptune.trial"},
    "hptune.execution": {"hptune.exceptions", "hptune._checks", "hptune.trial"},
    # Trackers get the study they log from the driver, so they need none of its modules.
    "hptune.tracking": {
        "hptune.exceptions",
        "hptune._checks",
        "hptune._extras",
        "hptune._paths",
        "hptune._secrets",
    },  # fmt: skip
    "hptune._secrets": set(),
}


def _layer(module: str) -> str | None:
    return next(
        (layer for layer in ALLOWED if module == layer or module.startswith(layer + ".")), None
    )


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_a_low_layer_imports_only_what_it_may(layer):
    graph = _graph()
    wrong = {
        (module, target)
        for module, targets in graph.items()
        if _layer(module) == layer
        for target in targets
        if _layer(target) != layer and not any(target.startswith(a) for a in ALLOWED[layer])
    }
    assert wrong == set()
