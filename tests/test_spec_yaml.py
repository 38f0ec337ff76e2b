"""What a spec's YAML may contain (hptune._spec_yaml): each refusal is one line with the
file, the line, the key path and the fix; each allowed form reads as documented."""

from __future__ import annotations

import re

import pytest

from hptune._spec_yaml import MAX_BYTES, MAX_DEPTH, MAX_NODES, load_yaml
from hptune.spec import SpecError, load_spec, parse_spec

BASE = "name: n\ntask: digits-mlp\nspace:\n  lr: loguniform(1e-4, 1e-1)\n"


def _errors(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_spec(text, "s.yaml")
    return info.value.errors


def _space(text: str) -> dict:
    return parse_spec(BASE + text, "s.yaml").space


# --- text -----------------------------------------------------------------------------------


def test_invalid_utf8_names_the_byte_its_offset_and_line(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_bytes(b"name: n\ntask: caf\xe9\n")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert info.value.errors == [
        f"{path}:2: not valid UTF-8: byte 0xe9 at offset 17 (line 2, column 10); "
        "save the file as UTF-8"
    ]


def test_a_file_over_the_size_limit_is_refused_before_it_is_read_whole(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_bytes(BASE.encode() + b"#" * MAX_BYTES)
    with pytest.raises(SpecError, match=re.escape(f"{path}: the spec is larger than 256 KiB")):
        load_spec(path)
    assert _errors(BASE + "#" * MAX_BYTES)[0].startswith("s.yaml: the spec is larger than 256")


def test_a_control_character_is_named_with_its_line_and_escaped():
    assert _errors(BASE + "seed: 1\x1b[0m\n") == [
        "s.yaml:5: not valid YAML: the character '\\x1b' (U+001B) may not appear in YAML; "
        "delete it, or write it as an escape in a double-quoted string"
    ]


def test_error_lines_escape_newlines_and_bidi_controls_from_the_spec():
    (error,) = _errors(BASE + 'strategy: "tp\\ne\\u202e"\n')
    assert error.startswith("s.yaml:5: strategy: unknown strategy 'tp\\ne\\u202e'")
    assert error.isprintable()


def test_crlf_line_ends_and_a_bom_read_as_plain_newlines(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + BASE.replace("\n", "\r\n").encode())
    assert load_spec(path) == parse_spec(BASE, str(path), default_name="s")


# --- tags -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tagged", "tag"),
    [
        ("!!python/name:os.system", "'!!python/name:os.system'"),
        ("!!python/object/apply:os.system ['echo hi']", "'!!python/object/apply:os.system'"),
        ("!!binary aGk=", "'!!binary'"),
        ("!!timestamp 2024-05-01", "'!!timestamp'"),
        ("!!set {a, b}", "'!!set'"),
        ("!!omap [a: 1]", "'!!omap'"),
        ("!secret x", "'!secret'"),
        ("!!str {a: 1}", "'!!str'"),
    ],
)
def test_tags_outside_the_core_schema_are_refused(tagged, tag):
    assert _errors(BASE + f"  act: {tagged}\n") == [
        f"s.yaml:5: space.act: the tag {tag} is not allowed here: a spec holds plain values, "
        "mappings and lists; remove the tag (a spec may use !!str, !!int, !!float, !!bool, "
        "!!null on values, !!map and !!seq on mappings and lists)"
    ]


def test_core_tags_confirm_or_convert_what_a_value_reads_as():
    space = _space("  a: !!int 3\n  b: !!str 5\n  c: !!float 1\n  d: !!bool yes\n  e: !!str 1e-3\n")
    assert space["a"] == 3 and space["b"] == "5" and space["c"] == 1.0 and space["d"] is True
    assert space["e"] == "1e-3"  # !!str keeps the text; a plain 1e-3 is the number
    assert _space("  f: !!map {x: 1}\n  g: !!seq [1, 2]\n")["g"] == [1, 2]


@pytest.mark.parametrize(
    ("tagged", "message"),
    [
        ("!!int abc", "!!int 'abc' is not an int; write an int or remove the tag"),
        ("!!int 3.5", "!!int '3.5' is not an int; write an int or remove the tag"),
        ("!!float x", "!!float 'x' is not a number; write a number or remove the tag"),
        ("!!bool maybe", "!!bool 'maybe' is not a boolean; write a boolean or remove the tag"),
        ("!!null x", "!!null 'x' is not null; write null or remove the tag"),
    ],
)
def test_a_core_tag_on_a_value_it_does_not_fit_is_an_error(tagged, message):
    assert _errors(BASE + f"  act: {tagged}\n") == [f"s.yaml:5: space.act: {message}"]


def test_plain_dates_and_equals_signs_stay_text():
    spec = parse_spec("name: 2024-05-01\ntask: digits-mlp\nspace: {op: =, lr: 0.1}\n")
    assert spec.name == "2024-05-01" and spec.space["op"] == "="


# --- keys -----------------------------------------------------------------------------------


def test_a_mapping_or_list_as_a_key_is_refused():
    assert _errors(BASE + "  ? [a, b]\n  : 1\n  {x: 1}: 2\n") == [
        "s.yaml:5: space: a key must be text, got a list; keys are names like lr",
        "s.yaml:7: space: a key must be text, got a mapping; keys are names like lr",
    ]


def test_a_key_yaml_reads_as_another_type_must_be_quoted():
    assert _errors(BASE + "  1: x\n  no: y\n  null: z\n") == [
        "s.yaml:5: space.1: a key must be text, got 1; quote it ('1') to use it as a name",
        "s.yaml:6: space.no: a key must be text, got False; quote it ('no') to use it as a name",
        "s.yaml:7: space.null: a key must be text, got None; quote it ('null') to use it as a name",
    ]
    assert _space("  '1': x\n  !!str no: y\n") == {
        "lr": "loguniform(1e-4, 1e-1)",
        "1": "x",
        "no": "y",
    }


# --- merge keys -----------------------------------------------------------------------------


def test_merge_keys_insert_the_merged_keys_where_the_merge_stands():
    space = _space(
        "  adam: &adam {beta1: 0.9, eps: 1.0e-8}\n"
        "  nadam: {first: 1, <<: *adam, beta1: 0.95}\n"  # written keys win, in any position
        "  both: {<<: [{a: 1, b: 1}, {b: 2, c: 2}]}\n"  # the earlier merged mapping wins
    )
    assert list(space["nadam"].items()) == [("first", 1), ("eps", 1e-8), ("beta1", 0.95)]
    assert space["both"] == {"a": 1, "b": 1, "c": 2}


def test_a_merged_key_has_the_line_of_its_definition():
    spec = parse_spec(BASE + "  base: &b {momentum: 0.9}\n  sgd:\n    <<: *b\n", "s.yaml")
    assert spec.lines[("space", "sgd", "momentum")] == 5


def test_a_merge_key_takes_only_mappings():
    assert _errors(BASE + "  x: {<<: 1}\n") == [
        "s.yaml:5: space.x: a merge key (<<) takes a mapping or a list of mappings, such as "
        "<<: *defaults or <<: [*a, *b]"
    ]


def test_a_key_written_twice_is_an_error_but_one_merged_twice_is_not():
    assert _errors(BASE + "  x: {a: 1, a: 2}\n") == [
        "s.yaml:5: space.x.a: duplicate key; write each key once"
    ]
    assert _space("  m: &m {a: 1}\n  x: {<<: [*m, *m]}\n")["x"] == {"a": 1}


# --- numbers --------------------------------------------------------------------------------


def test_an_int_of_more_than_30_digits_is_refused():
    assert _space(f"  big: {10**30 - 1}\n")["big"] == 10**30 - 1
    assert _errors(BASE + f"  big: {10**30}\n") == [
        "s.yaml:5: space.big: the number '1000000000000000000000000000000' is too large: a "
        "spec's ints have at most 30 digits and its numbers a magnitude of at most 1e+300; "
        "write a smaller one"
    ]
    (error,) = _errors(BASE + "  big: " + "9" * 5000 + "\n")  # past int()'s digit limit
    assert "the number '99999999999999999999...9999999999 (5000 characters)' is too large" in error


@pytest.mark.parametrize("number", ["1e301", "-1e400", "1.0e+999"])
def test_a_float_beyond_1e300_is_refused(number):
    (error,) = _errors(BASE + f"  big: {number}\n")
    assert error.startswith(f"s.yaml:5: space.big: the number '{number}' is too large")


def test_inf_and_nan_are_read_and_refused_by_the_rule_of_the_key():
    assert _space("  x: 1e300\n")["x"] == 1e300
    assert _errors(BASE + "training: {grad_clip: .inf}\n") == [
        "s.yaml:5: training.grad_clip: must be a finite number > 0 or None, got inf"
    ]


# --- bounds ---------------------------------------------------------------------------------


def _billion_laughs(levels: int = 9, width: int = 10) -> str:
    lines = ["lol0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels):
        lines.append(f"lol{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_at_the_node_limit():
    (error,) = _errors(_billion_laughs() + BASE)  # 10**9 values from 9 lines
    assert re.fullmatch(
        r"s\.yaml:\d: lol\d(\.\d)+: the spec holds more than 10,000 values \(an alias counts "
        r"as many values as it repeats\); keep long lists and data in the task, and check "
        r"the aliases",
        error,
    ), error


def test_a_spec_of_exactly_the_node_limit_is_read():
    # top mapping, name, task, space, lr: 5 values; a: 101; grid: 1 + 97 * 101 + 96
    hundred = ", ".join(map(str, range(100)))
    grid = ", ".join(["*a"] * 97 + [str(i) for i in range(96)])
    text = BASE + f"  a: &a [{hundred}]\n  grid: [{grid}"
    assert MAX_NODES == 5 + 101 + 1 + 97 * 101 + 96
    data, _ = load_yaml(text + "]\n", "s.yaml")
    assert len(data["space"]["grid"]) == 97 + 96
    assert "more than 10,000 values" in _errors(text + ", 96]\n")[0]


def test_aliases_count_each_time_they_are_used():
    shared = ", ".join(["1"] * 3000)
    assert (
        "more than 10,000 values"
        in _errors(BASE + f"  a: &a [{shared}]\n  b: *a\n  c: *a\n  d: *a\n")[0]
    )


def test_a_recursive_alias_is_refused():
    assert _errors(BASE + "  loop: &r [1, *r]\n") == [
        "s.yaml:5: space.loop.1: a recursive alias: this value contains itself; an alias may "
        "only repeat a value defined outside it"
    ]
    assert "a recursive alias" in _errors(BASE + "  loop: &r {<<: *r}\n")[0]


@pytest.mark.parametrize("style", ["flow", "block"])
def test_nesting_deeper_than_the_limit_is_refused(style):
    def nested(levels: int) -> str:
        if style == "flow":
            return BASE + "  deep: " + "[" * (levels - 2) + "1" + "]" * (levels - 2) + "\n"
        keys = "".join("  " * (i + 1) + f"k{i}:\n" for i in range(levels - 2))
        return BASE + keys + "  " * (levels - 1) + "leaf: 1\n"

    # The innermost value is MAX_DEPTH levels below the top: read (the space then accepts
    # the nested mappings and refuses the nested lists).
    try:
        parse_spec(nested(MAX_DEPTH), "s.yaml")
    except SpecError as exc:
        assert "levels deep" not in " ".join(exc.errors)
    (error,) = _errors(nested(MAX_DEPTH + 1))
    assert re.fullmatch(
        r"s\.yaml:\d+: (.*: )?nested more than 50 levels deep; a spec is a few levels of "
        r"mappings and lists: flatten it",
        error,
    ), error
    # No RecursionError from PyYAML's composer (a block 300 deep is 90 kB of indentation).
    (error,) = _errors(nested(10_000 if style == "flow" else 300))
    assert "nested more than 50 levels deep" in error
