"""Malformed specs for the spec fuzz test: deterministic mutations of ``examples/*.yaml``.

``malformed_specs(seed)`` returns ``(label, bytes)`` pairs; the same seed gives the same
list. Each family is a kind of bad input that issue 11 lists (byte flips, truncations,
invalid UTF-8, tags, anchors and alias bombs, merge keys, deep nesting, huge numbers,
complex keys, a type swap of every key, random unicode, control characters) or that the
test went on to find (space forms that nest deeply or hold huge numbers). A label names the
family, the example and what was done, so a failure can be replayed. A hand-written
generator rather than hypothesis: the families are the point, and a fixed list needs no
shrinking.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.yaml"))

# A `key: value` line of a block mapping (the value may be a flow collection).
_KEY_LINE = re.compile(rb"^( *)([\w-]+):[ ]+([^#\n]*?)[ ]*(#.*)?$", re.M)

SWAPS = [
    "[]", "{}", "[1, 2]", "{a: 1}", "null", "~", "true", "no", "-1", "0", "1.5", ".nan",
    ".inf", "-.inf", "''", "2020-01-01", "2020-01-01T10:00:00Z", "=", "'<<'", "1:30", "0x1F",
    "0o17", "*nowhere", "&a x", '"\\u2028"', '"\\0"', '"a\\nb"', '"\\ud800"', '"\\t"',
    '"\\x1b[31mred"', "|\n  block\n  text", "uniform(0, 1)", "choice()", "choice([{}])",
    "uniform(1, 2, 3)", "loguniform(-1, 1)", "randint(1.5, 3)", "choice(*x)", "uniform(low=1)",
    "uniform(0, 1e400)", "randint(0, " + "9" * 400 + ")", "choice(" + "9" * 400 + ")",
    "loguniform(1e-400, 1)", "uniform(nan, 1)", "choice([[1], [2]])", "choice({}, {})",
    "choice(" + "[" * 150 + "]" * 150 + ")", "{choice: {}}", "{choice: []}", "{choice: 1}",
    "{choice: {a: 1}}", "{choice: {name: {}}}", "{choice: {'a.b': {}}}", "{constant: [1, [2]]}",
    "{constant: {a: 1}}", "[{a: 1}]", "[[1, 2], [3]]", "[.nan]", "[1, 1]", "!!str 12",
    "!!int 12", "!!int abc", "!!float x", "!!binary aGk=", "!custom x", "{name: tpe}",
    "{name: [tpe]}", "{name: random, seed: 3}", "{name: asha, min_resource: -1}",
    "{trials: .nan}", "{timeout: .nan}", "{timeout: .inf}", "{timeout: -1e400}",
    "{epochs: " + "9" * 40 + "}", "{grad_clip: 1e999}", "{max_micro_batch: .inf}",
    "\U0001f600", "\u202eevil", "a\u0085b",
]  # fmt: skip

TAGS = [
    "!!python/name:os.system", "!!python/object/apply:os.system ['echo hi']",
    "!!python/tuple [1, 2]", "!!python/object:hptune.spec.Budget {trials: 1}",
    "!!binary aGVsbG8=", "!custom x", "!custom {a: 1}", "!<!foo> bar", "!!int abc", "!!int 3",
    "!!int 3.5", "!!str 5", "!!str {a: 1}", "!!float x", "!!float 1", "!!bool maybe",
    "!!bool yes", "!!null x", "!!null ''", "!!set {a, b}", "!!omap [a: 1]", "!!pairs [a: 1]",
    "!!timestamp 2020-01-01", "!!timestamp x", "!<tag:yaml.org,2002:int> 7", "!!map [1]",
    "!!seq {a: 1}", "!!merge x", "!!value x", "!!int " + "1" * 400, "! 12", "!!str",
    "!!int", "!!map {a: !!seq [!!str x]}",
]  # fmt: skip

NUMBERS = [
    "1" * 400, "-" + "9" * 400, "1e400", "-1e999", "1" * 31, "1" * 30, "0x" + "f" * 300,
    "0b" + "1" * 200, "9" * 5000, "1" + "_000" * 200, "1" + ":59" * 300, "1.5e308", "1e300",
    "1e301", "1e-400", "123456789.123456789e999", ".1e999", "-.0", "0.0", "+12", "-0x10", "0b_",
    "-0x_", "0x_", "._", "1__", "1_:30",
]  # fmt: skip

COMPLEX_KEYS = [
    "? [a, b]\n: 1\n", "{[1, 2]: x}", "{{a: 1}: x}", "? {a: 1}\n: x\n", "[a]: 1\n",
    "1: x\n", "null: x\n", "true: x\n", "1.5: x\n", "~: 1\n", "2020-01-01: x\n",
    "? |\n  multi\n  line\n: 1\n", '"a\\nb": 1\n', '"\\u2028": 1\n', "'': 1\n",
    "&k key: 1\n*k : 2\n", "*undefined : 1\n", "? &k [1]\n: 1\nx: {*k : 2}\n", "=: 1\n",
]  # fmt: skip


FORMS = [
    "uniform(0, " + "-" * 990 + "1)", "uniform(0, " + "+-" * 500 + "1)",
    "choice(" + "not " * 500 + "1)", "uniform(0, " + "-" * 100_000 + "1)",
    "randint(0, " + "(" * 300 + "1" + ")" * 300 + ")", "choice(" + "[" * 300 + "]" * 300 + ")",
    "uniform(" + "1, " * 10_000 + ")", "choice(lambda: 1)", "choice(__import__('os'))",
    "uniform(0, 1)(2)", "choice(*[1])", "uniform(**{})", "loguniform(1e-4, 1e-1, log=true)",
    "randint(0, 1e400)", "uniform(-1e400, 0)", "choice(1, 1.0, true)", "uniform(0x10, 0o7)",
    "choice('\\x00')", "choice(1 if 1 else 2)", "uniform(0, 1) # c", "choice(f'{1}')",
    "uniform(0, " + "9" * 400 + ")", "loguniform(1, " + "9" * 400 + ")",
    "randint(0, " + "9" * 400 + ")", "randint(0, " + "9" * 5000 + ")",
]  # fmt: skip


def bomb(levels: int, width: int, anchor: str = "l") -> str:
    """A "billion laughs" flow sequence: ``width ** levels`` leaves from a few lines."""
    parts = [f"&{anchor}0 [{', '.join(['lol'] * width)}]"]
    for i in range(1, levels):
        parts.append(f"&{anchor}{i} [{', '.join([f'*{anchor}{i - 1}'] * width)}]")
    return "[" + ", ".join(parts) + "]"


def mapping_bomb(levels: int, width: int) -> str:
    """A bomb of mappings, each level a mapping of ``width`` aliases to the level below."""
    lines = ["a0: &a0 {x: 1}"]
    for i in range(1, levels):
        refs = ", ".join(f"k{j}: *a{i - 1}" for j in range(width))
        lines.append(f"a{i}: &a{i} {{{refs}}}")
    return "\n".join(lines) + "\n"


def _key_lines(data: bytes) -> list[re.Match[bytes]]:
    return list(_KEY_LINE.finditer(data))


def _replace_value(data: bytes, match: re.Match[bytes], value: str) -> bytes:
    indent = match.group(1)
    new_value = value.encode("utf-8", "surrogatepass")
    if b"\n" in new_value:  # a block value goes on the lines below, indented
        lines = new_value.split(b"\n")
        new_value = lines[0] + b"".join(b"\n" + indent + b"  " + ln for ln in lines[1:])
    line = indent + match.group(2) + b": " + new_value
    return data[: match.start()] + line + data[match.end() :]


def _space_param(data: bytes, value: str) -> bytes:
    """``value`` as one more parameter of the space (every example ends with its space)."""
    return data.rstrip(b"\n") + b"\n  zz: " + value.encode("utf-8", "surrogatepass") + b"\n"


def _insert(data: bytes, at: int, chunk: bytes) -> bytes:
    return data[:at] + chunk + data[at:]


def _snippet_cases(rng, name, data, family, snippets, per_snippet=2):
    """Each snippet as the value of random keys and as a space parameter."""
    lines = _key_lines(data)
    for snippet in snippets:
        for match in rng.sample(lines, per_snippet):
            yield (
                f"{family}:{name}:{match.group(2).decode()}={snippet[:40]!r}",
                _replace_value(data, match, snippet),
            )
        yield f"{family}:{name}:space.zz={snippet[:40]!r}", _space_param(data, snippet)


def _byte_cases(rng, name, data):
    for i in range(30):
        flipped = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            flipped[rng.randrange(len(data))] = rng.randrange(256)
        yield f"byte-flip:{name}:{i}", bytes(flipped)
    for i in range(12):
        yield f"truncate:{name}:{i}", data[: rng.randrange(len(data))]
    bad_utf8 = [b"\xff", b"\xfe\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf8\x88\x80"]
    for i in range(12):
        chunk = bad_utf8[i % len(bad_utf8)]
        yield f"invalid-utf8:{name}:{chunk!r}:{i}", _insert(data, rng.randrange(len(data)), chunk)
    for i in range(12):
        chunk = bytes([rng.choice([*range(0, 9), 11, 12, *range(14, 32), 127])])
        yield f"control-byte:{name}:{chunk!r}:{i}", _insert(data, rng.randrange(len(data)), chunk)
    for i in range(12):
        char = chr(rng.choice([0x85, 0xA0, 0x200B, 0x2028, 0x2029, 0x202E, 0xFEFF, 0xFFFE,
                               0xFFFF, 0xE000, 0x1F600, 0x10FFFF, 0x0301, rng.randrange(0x3000)]))  # fmt: skip
        chunk = char.encode("utf-8", "surrogatepass")
        yield (
            f"unicode:{name}:U+{ord(char):04X}:{i}",
            _insert(data, rng.randrange(len(data)), chunk),
        )


def _structure_cases(name, data):
    text = data.decode()
    for levels, width in [(3, 3), (9, 9), (12, 10), (30, 2), (64, 2)]:
        yield f"alias-bomb:{name}:{levels}x{width}", _space_param(data, bomb(levels, width))
        yield (
            f"alias-bomb-top:{name}:{levels}x{width}",
            (text + f"extra: {bomb(levels, width)}\n").encode(),
        )
    yield f"alias-bomb-mapping:{name}", (mapping_bomb(12, 10) + text).encode()
    for snippet in ["&r [*r]", "&r {a: *r}", "&r {<<: *r}", "&r [1, [2, *r]]", "[&r [*r], *r]"]:
        yield f"recursive-alias:{name}:{snippet}", _space_param(data, snippet)
    yield (
        f"recursive-alias:{name}:space",
        text.replace("space:", "space: &s\n  self: *s\n", 1).encode(),
    )
    for n in [49, 50, 51, 100, 1000, 10000]:
        yield f"deep-flow-seq:{name}:{n}", _space_param(data, "[" * n + "]" * n)
        yield f"deep-flow-map:{name}:{n}", _space_param(data, "{a: " * n + "1" + "}" * n)
    for n in [45, 60, 300]:
        block = "".join(" " * (2 * i) + f"k{i}:\n" for i in range(n)) + " " * (2 * n) + "v: 1\n"
        yield f"deep-block:{name}:{n}", (text + block).encode()
        yield f"deep-seq:{name}:{n}", (text + "extra:\n  " + "- " * n + "1\n").encode()
    merges = [
        "base: &b {lr: 0.1}\nother:\n  <<: *b\n", "x: &x {a: 1}\ny: {<<: [*x, *x], b: 2}\n",
        "y: {<<: 1}\n", "y: {<<: [1]}\n", "y: {<<: [[1]]}\n", "y: {<<: *nowhere}\n",
        "<<: {name: merged}\n", "<<: [{seed: 1}, {seed: 2}]\n", "<<: {seed: 1}\nseed: 2\n",
        "y: {<<: {a: 1}, <<: {b: 2}}\n", "y: {<<: !!map {a: 1}}\n", "y: {? <<\n : {a: 1}}\n",
    ]  # fmt: skip
    for i, snippet in enumerate(merges):
        yield f"merge-key:{name}:{i}", (snippet + text).encode()
        yield f"merge-key-end:{name}:{i}", (text + snippet).encode()
    for i, snippet in enumerate(COMPLEX_KEYS):
        yield f"complex-key:{name}:{i}", (snippet + text).encode()
        yield (
            f"complex-key-space:{name}:{i}",
            text.replace(
                "space:\n", "space:\n" + "".join("  " + ln + "\n" for ln in snippet.splitlines()), 1
            ).encode(),
        )
    misc = [
        "%YAML 1.2\n---\n" + text, "%TAG ! tag:evil.example,2000:\n---\nname: !x y\n" + text,
        text + "---\nname: second\n", "---\n...\n", "\ufeff" + text, "\ufeff\ufeff" + text,
        text.replace("\n", "\r\n"), text.replace("\n", "\r"), text.replace("  ", "\t"), "#" * 10,
        "[" + text, text + "]", "&a " + text, "!!map\n" + text, "!!seq\n" + text,
        text.replace(":", "\u2236"), text.replace(" ", "\u00a0"), text.replace("\n", "\u2028"),
    ]  # fmt: skip
    for i, variant in enumerate(misc):
        yield f"misc:{name}:{i}", variant.encode("utf-8", "surrogatepass")


def malformed_specs(seed: int = 11) -> list[tuple[str, bytes]]:
    """Every generated case, in a fixed order; ``seed`` picks positions and values."""
    rng = random.Random(seed)
    cases: list[tuple[str, bytes]] = []
    for path in EXAMPLES:
        name, data = path.stem, path.read_bytes()
        for match in _key_lines(data):  # a type swap of every key
            for value in rng.sample(SWAPS, 4):
                label = f"swap:{name}:{match.group(2).decode()}={value[:40]!r}"
                cases.append((label, _replace_value(data, match, value)))
        cases += _byte_cases(rng, name, data)
        cases += _snippet_cases(rng, name, data, "tag", TAGS, per_snippet=1)
        cases += _snippet_cases(rng, name, data, "number", NUMBERS)
        cases += _structure_cases(name, data)
        cases += [(f"space-form:{name}:{i}", _space_param(data, f)) for i, f in enumerate(FORMS)]
    return cases
