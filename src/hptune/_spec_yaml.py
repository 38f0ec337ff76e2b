"""YAML for specs: the safe subset a spec may use, read within bounds, with the line of
every key path for errors.

PyYAML's safe composer turns the text into a graph of nodes (an alias is the node it names,
shared, not a copy), and one walk over that graph builds the plain values (dict, list, str,
int, float, bool, None). The walk, not PyYAML's constructor, decides what is allowed, so
every problem is one line naming the file, the line and the key path, and all of them are
reported at once (a passed bound stops the walk at once). A spec may contain:

- UTF-8 text of at most ``MAX_BYTES`` (a bad byte is named with its offset and line).
- Scalars as PyYAML's ``SafeLoader`` reads them (YAML 1.1: ``yes``/``no`` are booleans,
  ``0x1F`` and ``1:30`` are ints), with two changes: a plain ``1e-4`` is a float (YAML 1.1
  wants ``1.0e-4``; every user means the number), and a plain date or ``=`` stays text
  (YAML 1.2's core schema has neither type, and no spec key takes a date).
- Explicit tags only from the core schema, on a value they fit: ``!!str`` makes a scalar
  text; ``!!int``, ``!!float``, ``!!bool`` and ``!!null`` confirm what the value reads as
  (``!!float 1`` is 1.0; ``!!int abc`` is an error); ``!!map`` and ``!!seq`` mark a mapping
  and a list. Every other tag is refused: ``!!python/...``, ``!!binary``, ``!!set``,
  ``!!omap``, ``!!timestamp``, local ``!tags``.
- Keys that are text: a mapping or a list as a key is refused, and so is a plain key that
  YAML reads as another type (``1:``, ``no:``, ``null:``); quoting it makes it text.
- Merge keys, supported as YAML 1.1 defines them (https://yaml.org/type/merge.html):
  ``<<: *base`` or ``<<: [*a, *b]`` inserts the keys of the merged mappings where the
  ``<<`` stands; a key written in the mapping wins over a merged one, and an earlier merged
  mapping wins over a later one.
- Numbers of a size that means something: ints of at most ``MAX_INT_DIGITS`` digits, floats
  of magnitude at most ``MAX_FLOAT``. ``.inf`` and ``.nan`` are read; the rule of each key
  refuses them where a finite number is needed.
- Anchors and aliases, within bounds: the spec they expand to has at most ``MAX_NODES``
  values and ``MAX_DEPTH`` levels of nesting, and no value contains itself. The walk counts
  as it goes, so a "billion laughs" spec (a few lines whose aliases expand to 10**9 values)
  is refused after ``MAX_NODES`` values, in milliseconds and kilobytes.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, NoReturn

import yaml

from hptune.exceptions import SpecError

MAX_BYTES = 256 * 1024
MAX_NODES = 10_000
MAX_DEPTH = 50
MAX_INT_DIGITS = 30
MAX_FLOAT = 1e300

# A space form not already inside quotes: uniform(...), loguniform(...), randint(...), choice(...)
_FORM = re.compile(
    r"(?<![\w'\"])(?:log)?uniform\([^()]*\)|(?<![\w'\"])(?:randint|choice)\([^()]*\)"
)
_SCI_FLOAT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")
_INF_OR_NAN = re.compile(r"^[-+]?\.(inf|Inf|INF|nan|NaN|NAN)$")

_CORE = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL = (_CORE + t for t in ("str", "int", "float", "bool", "null"))
_MAP, _SEQ, _MERGE = _CORE + "map", _CORE + "seq", _CORE + "merge"
# Each allowed scalar tag, and the types its value may read as without the tag (None: any).
_SCALAR_TAGS = {_STR: None, _INT: {_INT}, _FLOAT: {_FLOAT, _INT}, _BOOL: {_BOOL}, _NULL: {_NULL}}
_TYPE_NAMES = {
    _STR: "text", _INT: "an int", _FLOAT: "a number", _BOOL: "a boolean", _NULL: "null",
}  # fmt: skip


def locate(source: str, line: int | None, path: tuple[str, ...], message: str) -> str:
    """``spec.yaml:7: space.optimizer.sgd: message``: the form of every spec error. A path
    into the space omits the ``choice`` keys, to name parameters as configs do."""
    where = f"{source}:{line}" if line else source
    parts = [p for p in path if p != "choice"] if path[:1] == ("space",) else path
    shown = ".".join(p or "''" for p in parts) or "(top)"
    return f"{where}: {shown}: {message}"


def _shown(text: str, limit: int = 40) -> str:
    """``text`` quoted, with its middle cut when it is long (a 400-digit number)."""
    if len(text) > limit:
        text = f"{text[: limit // 2]}...{text[-limit // 4 :]} ({len(text)} characters)"
    return repr(text)


def _tag_name(tag: str) -> str:
    return "!!" + tag[len(_CORE) :] if tag.startswith(_CORE) else tag


class _Refused(Exception):
    """A bound passed while composing, at ``mark``."""

    def __init__(self, mark: yaml.Mark, message: str) -> None:
        super().__init__(message)
        self.mark, self.message = mark, message


class _Composer(yaml.SafeLoader):
    """PyYAML's safe composer with this module's scalar types, stopped at ``MAX_DEPTH``
    levels (PyYAML composes recursively: a few thousand ``[`` overflow Python's stack) and
    at twice ``MAX_NODES`` nodes written, keys and values (the builder then counts values
    exactly), so that a long text stops early."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.depth = self.n_nodes = 0

    def resolve(self, kind: type, value: Any, implicit: Any) -> str:
        tag = super().resolve(kind, value, implicit)
        if kind is yaml.ScalarNode and implicit[0]:  # a plain scalar
            if tag == _STR and _SCI_FLOAT.match(value):
                return _FLOAT
            if tag in (_CORE + "timestamp", _CORE + "value"):
                return _STR
        return tag

    def fetch_flow_collection_start(self, token_class: type) -> None:
        # The scanner looks ahead up to 1,024 characters, checking every open flow level
        # at each token: 1,000 `[` take a second before the composer sees the first.
        if self.flow_level > MAX_DEPTH:
            raise _Refused(self.get_mark(), _too_deep())
        super().fetch_flow_collection_start(token_class)

    def compose_node(self, parent: Any, index: Any) -> yaml.Node:
        self.depth += 1
        self.n_nodes += 1
        if self.depth > MAX_DEPTH + 1:  # the top node is at depth 1 and nests 0 levels
            raise _Refused(self.peek_event().start_mark, _too_deep())
        if self.n_nodes > 2 * MAX_NODES:  # keys too: the builder counts values exactly
            raise _Refused(self.peek_event().start_mark, _too_many())
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _too_deep() -> str:
    return (
        f"nested more than {MAX_DEPTH} levels deep; a spec is a few levels of "
        "mappings and lists: flatten it"
    )


def _too_many() -> str:
    return (
        f"the spec holds more than {MAX_NODES:,} values (an alias counts as many values as "
        "it repeats); keep long lists and data in the task, and check the aliases"
    )


_BAD = object()  # the value of a node whose problem is already recorded


class _Builder:
    """Builds the plain value of a composed node graph and the line of each key path. It
    counts every value it builds, an alias or a merge each time it is used, and stops at
    ``MAX_NODES``: the graph shares what aliases repeat, the values built would not."""

    def __init__(self, source: str, resolve: Any) -> None:
        self.source, self.resolve = source, resolve
        self.lines: dict[tuple[str, ...], int] = {}
        self.problems: list[tuple[int, str]] = []  # (line, error)
        self.n_values = 0
        self.open: set[int] = set()  # collections being built: meeting one again is a cycle
        self.constructor = yaml.SafeLoader("")

    def problem(self, node: yaml.Node, path: tuple[str, ...], message: str) -> None:
        line = node.start_mark.line + 1
        self.problems.append((line, locate(self.source, line, path, message)))

    def errors(self) -> list[str]:
        """Each problem once (an anchor's is met at each alias), in the order of the lines."""
        return list(dict.fromkeys(e for _, e in sorted(self.problems, key=lambda p: p[0])))

    def refuse(self, node: yaml.Node, path: tuple[str, ...], message: str) -> NoReturn:
        self.problem(node, path, message)
        raise SpecError(self.errors())

    def count(self, node: yaml.Node, path: tuple[str, ...]) -> None:
        self.n_values += 1
        if self.n_values > MAX_NODES:
            self.refuse(node, path, _too_many())

    def enter(self, node: yaml.Node, path: tuple[str, ...]) -> None:
        if id(node) in self.open:
            self.refuse(
                node, path, "a recursive alias: this value contains itself; an alias may "
                "only repeat a value defined outside it",
            )  # fmt: skip
        self.open.add(id(node))

    def value(self, node: yaml.Node, path: tuple[str, ...]) -> Any:
        self.count(node, path)
        if len(path) > MAX_DEPTH:
            self.refuse(node, path, _too_deep())
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node, path)
        is_mapping = isinstance(node, yaml.MappingNode)
        if node.tag != (_MAP if is_mapping else _SEQ):
            self.problem(node, path, _tag_problem(node.tag))
            return _BAD
        self.enter(node, path)
        try:
            if is_mapping:
                return self.mapping(node, path)
            return [self.value(item, (*path, str(i))) for i, item in enumerate(node.value)]
        finally:
            self.open.discard(id(node))

    def mapping(self, node: yaml.MappingNode, path: tuple[str, ...]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, key_node, value_node, merged in self.entries(node, path, 0):
            sub = (*path, key)
            if key in out:
                if not merged:  # an earlier merged mapping wins over a later one
                    self.problem(key_node, sub, "duplicate key; write each key once")
                continue
            self.lines[sub] = key_node.start_mark.line + 1
            out[key] = self.value(value_node, sub)
        return out

    def entries(self, node: yaml.MappingNode, path: tuple[str, ...], depth: int) -> list:
        """``(key, key node, value node, merged)`` of each entry, merge keys expanded in
        place; a merged key that the mapping writes itself is left out."""
        items = []
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag == _MERGE:
                items += [(*item[:3], True) for item in self.merged(value_node, path, depth)]
                continue
            key = self.key(key_node, path)
            if key is not _BAD:
                items.append((key, key_node, value_node, False))
        written = {item[0] for item in items if not item[3]}
        return [item for item in items if not item[3] or item[0] not in written]

    def merged(self, node: yaml.Node, path: tuple[str, ...], depth: int) -> list:
        """The entries a merge key's value (a mapping, or a list of them) brings in."""
        if depth >= MAX_DEPTH:
            self.refuse(node, path, _too_deep())
        is_list = isinstance(node, yaml.SequenceNode) and node.tag == _SEQ
        found = []
        for source in node.value if is_list else [node]:
            if not isinstance(source, yaml.MappingNode) or source.tag != _MAP:
                self.problem(
                    source, path, "a merge key (<<) takes a mapping or a list of mappings, "
                    "such as <<: *defaults or <<: [*a, *b]",
                )  # fmt: skip
                continue
            self.count(source, path)  # an empty mapping merged 10**9 times is work too
            self.enter(source, path)
            try:
                for entry in self.entries(source, path, depth + 1):
                    self.count(source, path)
                    found.append(entry)
            finally:
                self.open.discard(id(source))
        return found

    def key(self, node: yaml.Node, path: tuple[str, ...]) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            kind = "mapping" if isinstance(node, yaml.MappingNode) else "list"
            self.problem(node, path, f"a key must be text, got a {kind}; keys are names like lr")
            return _BAD
        if node.tag == _FLOAT and node.style is None and _SCI_FLOAT.match(node.value):
            return node.value  # a key 1e3 stays the name it has always been
        key = self.scalar(node, path)
        if key is not _BAD and not isinstance(key, str):
            self.problem(
                node, (*path, node.value), f"a key must be text, got {key!r}; quote it "
                f"('{node.value}') to use it as a name",
            )  # fmt: skip
            return _BAD
        return key

    def scalar(self, node: yaml.ScalarNode, path: tuple[str, ...]) -> Any:
        tag = node.tag
        if tag == _MERGE and node.value == "<<":  # `<<` where a value stands is text
            return node.value
        if tag not in _SCALAR_TAGS:
            self.problem(node, path, _tag_problem(tag))
            return _BAD
        fits = _SCALAR_TAGS[tag]
        if (
            fits is not None
            and self.resolve(yaml.ScalarNode, node.value, (True, False)) not in fits
        ):
            what = _TYPE_NAMES[tag]
            self.problem(
                node, path, f"{_tag_name(tag)} {_shown(node.value)} is not {what}; "
                f"write {what} or remove the tag",
            )  # fmt: skip
            return _BAD
        if tag == _INT and len(node.value) > 200:  # before int() meets its 4,300-digit limit
            self.problem(node, path, _too_large(node.value))
            return _BAD
        try:
            value = self.constructor.construct_object(node)
        except ValueError:  # 0x_ reads as an int, but int("", 16) fails
            self.problem(node, path, f"cannot read {_shown(node.value)} as {_TYPE_NAMES[tag]}")
            return _BAD
        if tag in (_INT, _FLOAT) and not _sized(value, node.value):
            self.problem(node, path, _too_large(node.value))
            return _BAD
        return value


def _sized(value: int | float, text: str) -> bool:
    if isinstance(value, int):
        return abs(value) < 10**MAX_INT_DIGITS
    if math.isfinite(value):
        return abs(value) <= MAX_FLOAT
    return _INF_OR_NAN.match(text) is not None  # .inf and .nan, but not 1e400


def _too_large(text: str) -> str:
    return (
        f"the number {_shown(text)} is too large: a spec's ints have at most {MAX_INT_DIGITS} "
        f"digits and its numbers a magnitude of at most {MAX_FLOAT:g}; write a smaller one"
    )


def _tag_problem(tag: str) -> str:
    return (
        f"the tag {_shown(_tag_name(tag))} is not allowed here: a spec holds plain values, "
        "mappings and lists; remove the tag (a spec may use !!str, !!int, !!float, !!bool, "
        "!!null on values, !!map and !!seq on mappings and lists)"
    )


def _quote_forms(text: str) -> str:
    """Quote unquoted space forms so YAML keeps their commas.

    In a flow mapping, ``{beta1: uniform(0.85, 0.95)}`` would otherwise split at the comma
    into ``beta1: "uniform(0.85"`` and a stray key. Quoting stays on the same line, so line
    numbers in errors are unchanged.
    """
    return _FORM.sub(lambda m: "'" + m.group(0).replace("'", "''") + "'", text)


# YAML 1.1's line breaks, as PyYAML counts lines.
_BREAKS = re.compile("\r\n|[\n\r\x85\u2028\u2029]")


def _not_yaml(exc: yaml.YAMLError, text: str, source: str) -> str:
    if isinstance(exc, yaml.reader.ReaderError):  # a character YAML does not allow
        line = 1 + len(_BREAKS.findall(text, 0, exc.position))
        char = chr(exc.character) if isinstance(exc.character, int) else exc.character
        return (
            f"{source}:{line}: not valid YAML: the character {char!r} (U+{ord(char):04X}) may "
            "not appear in YAML; delete it, or write it as an escape in a double-quoted string"
        )
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f"{source}:{mark.line + 1}" if mark else source
    return f"{where}: not valid YAML: {getattr(exc, 'problem', None) or exc}"


def _too_big(source: str) -> str:
    return (
        f"{source}: the spec is larger than {MAX_BYTES // 1024} KiB; a spec describes a "
        "study in a few lines: keep data and long lists in the task"
    )


def _compose(text: str, source: str) -> tuple[yaml.Node | None, _Composer]:
    try:
        loader = _Composer(text)  # reads the text: refuses characters YAML does not allow
        try:
            return loader.get_single_node(), loader
        finally:
            loader.dispose()
    except _Refused as exc:
        raise SpecError([f"{source}:{exc.mark.line + 1}: {exc.message}"]) from None
    except yaml.YAMLError as exc:
        raise SpecError([_not_yaml(exc, text, source)]) from exc


def load_yaml(text: str, source: str) -> tuple[Any, dict[tuple[str, ...], int]]:
    """The value of the YAML document ``text`` and the line of each key path in it.

    Raises:
        SpecError: Every problem with the YAML, or the first bound it passes.
    """
    if len(text) > MAX_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise SpecError([_too_big(source)])
    node, loader = _compose(_quote_forms(text), source)
    if node is None:
        raise SpecError([f"{source}: the spec is empty; it needs at least 'task' and 'space'"])
    builder = _Builder(source, loader.resolve)
    data = builder.value(node, ())
    if builder.problems:
        raise SpecError(builder.errors())
    return data, builder.lines


def decode(data: bytes, source: str) -> str:
    """``data`` as UTF-8 text, line ends read as Python's text files read them."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - data.rfind(b"\n", 0, exc.start)
        raise SpecError(
            [
                f"{source}:{line}: not valid UTF-8: byte 0x{data[exc.start]:02x} at offset "
                f"{exc.start} (line {line}, column {column}); save the file as UTF-8"
            ]
        ) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_text(path: Path) -> str:
    """The text of the spec file ``path``; reads at most ``MAX_BYTES`` + 1 bytes."""
    try:
        with path.open("rb") as file:
            data = file.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise SpecError([f"{path}: no such file"]) from None
    except OSError as exc:
        raise SpecError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    if len(data) > MAX_BYTES:
        raise SpecError([_too_big(str(path))])
    return decode(data, str(path))
