"""Valid specs keep their meaning: every example, and specs using each YAML feature a valid
spec could use (anchors and aliases, YAML 1.1 scalars such as ``yes`` and ``0x10``, explicit
core tags, flow style, block scalars, a BOM and CRLF line ends), parse to the StudySpec and
the key lines recorded in ``data/spec_snapshots.json``.

The snapshot was written by the loader as it was before issue 11 hardened it, so these
tests show that the hardening refused only what was broken. Regenerate it only for a change
that is meant to change what a valid spec means, and say so in the commit.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from hptune.spec import StudySpec, load_spec, parse_spec
from hptune.training import TrainingOptions

ROOT = Path(__file__).resolve().parents[1]
SNAPSHOTS = json.loads((Path(__file__).parent / "data" / "spec_snapshots.json").read_text())


#: The budget's fields when the snapshot was written.
_FIRST = ("trials", "epochs", "timeout_s")


def _as_recorded(spec: StudySpec, source: str) -> dict:
    """The spec as the snapshot records it: JSON values, key paths dotted, the source
    relative to the repository, and only the training options that differ from the default
    (so that a new option with a default does not break the snapshot)."""
    data = dataclasses.asdict(dataclasses.replace(spec, source=source))
    default = dataclasses.asdict(TrainingOptions())
    data["training"] = {k: v for k, v in data["training"].items() if default[k] != v}
    # A budget field added later (trial_timeout_s) is recorded only when it is set.
    data["budget"] = {k: v for k, v in data["budget"].items() if v is not None or k in _FIRST}
    data["lines"] = {".".join(path): line for path, line in spec.lines.items()}
    return json.loads(json.dumps(data))


def _assert_matches(actual: dict, recorded: dict) -> None:
    # Fields the snapshot lacks (added to StudySpec later) are not compared.
    for key, expected in recorded.items():
        assert actual[key] == expected, key


@pytest.mark.parametrize("name", [k for k in SNAPSHOTS if k.startswith("examples/")])
def test_every_example_parses_to_its_recorded_spec(name):
    spec = load_spec(ROOT / name)
    _assert_matches(_as_recorded(spec, name), SNAPSHOTS[name])


@pytest.mark.parametrize("name", [k for k in SNAPSHOTS if not k.startswith("examples/")])
def test_each_valid_yaml_feature_keeps_its_meaning(name):
    recorded = SNAPSHOTS[name]
    spec = parse_spec(recorded["text"], name)
    _assert_matches(_as_recorded(spec, name), recorded["spec"])


def test_the_snapshot_covers_every_example():
    examples = {f"examples/{p.name}" for p in (ROOT / "examples").glob("*.yaml")}
    assert examples == {k for k in SNAPSHOTS if k.startswith("examples/")}
