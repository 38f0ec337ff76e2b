"""A spec's ``warm_start:``: a new study of a wider space starts from an old study's trials,
which the refusal of a changed space names as the way out (real training on digits, real
SQLite files, the real CLI)."""

from __future__ import annotations

import json
import re

import pytest

from hptune import runner
from hptune.cli import main
from hptune.spec import SpecError, parse_spec
from hptune.study import create_study, load_study

OLD = """\
name: old
task: digits-mlp
seed: 0
strategy: random
budget: {trials: 3, epochs: 1}
space:
  lr: loguniform(1e-3, 1e-1)
  batch_size: choice(64, 128)
  model: {width: 16}
"""
#: The old spec with the range of lr widened: every old trial fits it.
WIDER = OLD.replace("loguniform(1e-3, 1e-1)", "loguniform(1e-4, 1e-1)")


def _spec(text: str, storage: str):
    return parse_spec(text, "s.yaml").replace(storage=storage)


@pytest.fixture
def storage(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    runner.run(_spec(OLD, url))
    return url


@pytest.mark.slow
def test_a_wider_space_is_refused_naming_the_warm_start_then_starts_from_the_old_trials(
    storage, capsys
):
    with pytest.raises(SpecError) as info:
        runner.run(_spec(WIDER, storage))
    assert info.value.errors == [
        "s.yaml:1: name: study 'old' was run with a different spec: space.lr 'loguniform(1e-3, 1e-1)' -> "
        "'loguniform(1e-4, 1e-1)'; its trials would not be comparable with new ones. Run it "
        "as a new study with `warm_start: {study: old}` to keep what its trials learned "
        "(--name NEW, or another name: in the spec), or restore that value to continue it."
    ]
    text = WIDER.replace("name: old", "name: new") + "warm_start: {study: old}\n"
    new = runner.run(_spec(text, storage))
    old = load_study("old", storage)
    copies, own = new.trials[:3], new.trials[3:]
    assert [c.stage for c in copies] == ["warm-start"] * 3 and len(own) == 3  # budget: 3 own
    assert [(c.config, c.seed, c.value) for c in copies] == [
        (t.config, t.seed, t.value) for t in old.trials
    ]
    assert all("test_accuracy" in c.attrs for c in copies) and new.n_counted_trials == 3
    # status counts the study's own trials and says where the others came from.
    capsys.readouterr()
    assert main(["status", "new", "--storage", storage]) == 0
    printed = capsys.readouterr().out
    assert "new (maximize): 3 trials: complete 3" in printed
    assert "warm start: 3 trials copied from study 'old' (they count towards the best" in printed
    assert main(["status", "new", "--storage", storage, "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["warm_start"] == {"study": "old", "storage": storage, "trials": 3}
    assert main(["best", "new", "--storage", storage]) == 0
    copied = "(copied from study 'old' by a warm start)" in capsys.readouterr().out
    assert copied == (new.best_trial.stage == "warm-start"), new.best_trial
    # The progress bar counts the study's own trials; its best is the study's, copies too.
    import io

    from rich.console import Console

    from hptune.cli._progress import RunProgress

    progress = RunProgress(Console(file=io.StringIO()), new, 3)
    assert progress.counts == {"COMPLETE": 3, "PRUNED": 0, "FAILED": 0}
    assert progress.best == new.best_value
    # The copies teach the sampler and leave the report, which says so.
    from hptune.report._data import gather
    from hptune.report._summary import warm_start_sentence

    data = gather(new)
    assert [t.number for t in data.trials] == [3, 4, 5] and data.warm_start["trials"] == 3
    assert warm_start_sentence(data) == (
        "Warm start: the study began with 3 trials copied from study 'old'; they taught its "
        "sampler and are left out of this report."
    )


def test_a_warm_start_needs_a_study_that_differs_only_in_space_and_seed(storage, tmp_path):
    def errors(text):
        with pytest.raises(SpecError) as info:
            runner.check_spec(_spec(text, storage))
        return info.value.errors

    base = WIDER.replace("name: old", "name: new")
    (error,) = errors(base.replace("epochs: 1", "epochs: 2") + "warm_start: old\n")
    assert error == (
        "s.yaml:10: warm_start: study 'old' was run with a different budget.epochs 1 -> 2, so "
        "its trials' values do not measure what this study's will; warm-start from a study "
        "that differs only in its space and seed."
    )
    (error,) = errors(base + "warm_start: {study: nope}\n")
    assert error.startswith("s.yaml:10: warm_start: no study named 'nope' in ")
    create_study({"x": 1.0}, name="python", storage=storage, direction="maximize")
    (error,) = errors(base + "warm_start: python\n")
    assert "study 'python' was not run from a spec, so hptune cannot check" in error
    # The spec's own study exists: a warm start is read only when it is created.
    runner.check_spec(_spec(OLD + "warm_start: nope\n", storage))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("3", "s.yaml:10: warm_start: expected {study: old-name} or a name, got 3"),
        ("{studdy: x}", "s.yaml:10: warm_start.studdy: unknown key (did you mean 'study'?)"),
        ("{storage: sqlite:///x.db}", "s.yaml:10: warm_start.study: missing: the name of"),
    ],
)
def test_a_bad_warm_start_key_is_a_spec_error(value, message):
    with pytest.raises(SpecError) as info:
        parse_spec(OLD + f"warm_start: {value}\n", "s.yaml")
    assert any(re.match(re.escape(message), e) for e in info.value.errors), info.value.errors
