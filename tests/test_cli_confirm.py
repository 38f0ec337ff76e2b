"""A study run with ``confirm:`` through the CLI: real training on digits, a real SQLite
file; what run, best, status, show, rerun and the report say about the configs that were
re-trained with fresh seeds."""

import json
import re
import statistics

import pytest

from hptune.cli import main
from hptune.cli._progress import fmt
from hptune.study import load_study

SPEC = """\
name: confirmed
task: digits-mlp
seed: 1
strategy: random
pruner: none
budget: {trials: 7, epochs: 2}
confirm: {top: 2, seeds: 2}
space:
  lr: loguniform(1e-3, 3e-2)
  batch_size: choice(64, 128)
  model: {width: 16}
"""


@pytest.fixture(scope="module")
def confirmed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("confirm")
    spec = folder / "spec.yaml"
    spec.write_text(SPEC)
    storage = f"sqlite:///{folder / 'studies.db'}"
    return spec, storage, folder


def _out(capsys, argv):
    capsys.readouterr()
    assert main(argv) == 0
    return capsys.readouterr().out


@pytest.mark.slow
def test_run_prints_the_confirmation_and_the_best_mean(confirmed, capsys):
    spec, storage, _ = confirmed
    printed = _out(capsys, ["run", str(spec), "--storage", storage])
    study = load_study("confirmed", storage)
    repeats = [r for r in study.trials if r.repeat_of is not None]
    assert len(study.trials) == 7 and len(repeats) == 4
    assert {r.repeat_of for r in repeats} == set(
        study.optuna_study.user_attrs["hptune.confirm"]["trials"]
    )
    chosen = study.confirmation.best
    mean = statistics.fmean(chosen.values.values())
    assert "confirmation (configs re-trained with fresh seeds, best mean first)" in printed
    assert f"best trial #{chosen.trial}: val_accuracy = " in printed
    assert "mean of 2 fresh seeds; the search read" in printed
    assert re.search(r"\(\d+ \(#\d+\)\)|\d+ \(#\d+\)", printed)  # repeats marked on the board

    best = json.loads(_out(capsys, ["best", "confirmed", "--storage", storage, "--json"]))
    assert best["trial"] == chosen.trial and best["value"] == pytest.approx(mean)
    assert best["confirmed"]["seeds"] == 2 and best["confirmed"]["noise"] > 0
    assert best["confirmed"]["search_value"] == study.trials[chosen.trial].value
    # The test accuracy beside the fresh seeds' validation mean is theirs too, not the
    # search run's (as lucky as the reading that picked it).
    fresh_test = statistics.fmean(study.trials[n].attrs["test_accuracy"] for n in chosen.values)
    assert best["confirmed"]["test_accuracy"] == pytest.approx(fresh_test)
    assert f"test_accuracy = {fmt(fresh_test)} (mean of 2 fresh seeds)" in printed
    text = _out(capsys, ["best", "confirmed", "--storage", storage])
    assert "seed noise ±" in text and f"  #{chosen.trial}: mean " in text
    assert f"test_accuracy = {fmt(fresh_test)} (mean of 2 fresh seeds)" in text

    shown = _out(capsys, ["show", "confirmed", str(repeats[0].number), "--storage", storage])
    assert f"re-trains trial #{repeats[0].repeat_of}'s config with a fresh seed" in shown
    assert "stage=confirm" in shown
    shown = _out(capsys, ["show", "confirmed", str(chosen.trial), "--storage", storage])
    assert "confirmed: mean " in shown

    status = _out(capsys, ["status", "confirmed", "--storage", storage])
    assert "seed noise ±" in status


@pytest.mark.slow
def test_a_confirmation_trial_reruns_identically(confirmed, capsys):
    spec, storage, _ = confirmed
    study = load_study("confirmed", storage)
    if not study.trials:
        main(["run", str(spec), "--storage", storage])
        study = load_study("confirmed", storage)
    repeat = next(r for r in study.trials if r.repeat_of is not None)
    printed = _out(capsys, ["rerun", "confirmed", str(repeat.number), "--storage", storage])
    assert "identical" in printed and "different" not in printed


@pytest.mark.slow
def test_the_report_has_the_confirmation_table(confirmed, capsys):
    spec, storage, folder = confirmed
    if not load_study("confirmed", storage).trials:
        main(["run", str(spec), "--storage", storage])
    page_path = folder / "report.html"
    _out(capsys, ["report", "confirmed", "--storage", storage, "-o", str(page_path)])
    page = page_path.read_text()
    section = re.search(r'<section id="confirmation">(.*?)</section>', page, re.S).group(1)
    assert "fresh mean" in section and "Seed noise: ±" in section
    assert section.count("<tr>") == 3  # a head and the two confirmed configs
    summary = re.search(r'<section id="summary">(.*?)</section>', page, re.S).group(1)
    assert "mean of 2 fresh seeds" in summary


@pytest.mark.slow
def test_a_run_stopped_before_its_confirmation_says_so_and_resume_runs_it(tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.replace("name: confirmed", "name: cut"))
    storage = f"sqlite:///{tmp_path / 'cut.db'}"
    # The first trial outlasts the timeout: the run stops within the search's share.
    printed = _out(capsys, ["run", str(spec), "--storage", storage, "--timeout", "0.1s"])
    assert "stopped: its timeout passed" in printed
    assert "the confirmation has not run (it takes the last 4 trials of the budget)" in printed
    assert load_study("cut", storage).confirmation is None
    # The spec keeps the run's --timeout; resume takes another, and goes on to confirm.
    assert main(["resume", "cut", "--storage", storage, "--timeout", "banana"]) == 2
    assert "--timeout: " in capsys.readouterr().err
    printed = _out(capsys, ["resume", "cut", "--storage", storage, "--timeout", "10m"])
    assert "mean of 2 fresh seeds" in printed and "has not run" not in printed
    study = load_study("cut", storage)
    assert study.confirmation.best is not None and study.n_counted_trials == 7
