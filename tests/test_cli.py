"""The ``hptune`` CLI end to end: real specs, real training, real SQLite files."""

import json
import subprocess
import sys
import textwrap

import pytest
import yaml

from hptune.cli import main

SPEC = """\
name: cli-digits
task: digits-mlp
seed: 3
strategy: random
pruner: median
budget: {trials: 4, epochs: 2}
workers: 1
space:
  lr: loguniform(1e-3, 3e-2)
  batch_size: choice(64, 128)
  optimizer: {choice: {adam: {}, sgd: {momentum: uniform(0.8, 0.95)}}}
  scheduler: cosine
  warmup_epochs: randint(0, 1)
  model: {width: 32}
"""


@pytest.fixture
def spec_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC)
    return path


def _json(capsys, argv):
    capsys.readouterr()
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.slow
def test_run_status_best_show_rerun(spec_file, tmp_path, capsys):
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    assert main(["run", str(spec_file), "--storage", storage]) == 0
    printed = capsys.readouterr().out
    assert "leaderboard: cli-digits" in printed and "test_accuracy" in printed

    status = _json(capsys, ["status", "cli-digits", "--storage", storage, "--json"])
    assert status["trials"] == 4 and sum(status["states"].values()) == 4
    best = status["best"]
    assert 0.1 < best["value"] <= 1.0 and "test_accuracy" in best["attrs"]

    export = tmp_path / "best.yaml"
    assert main(["best", "cli-digits", "--storage", storage, "--export", str(export)]) == 0
    exported = yaml.safe_load(export.read_text())
    assert exported["config"] == best["config"] and exported["value"] == best["value"]

    shown = _json(
        capsys, ["show", "cli-digits", str(best["trial"]), "--storage", storage, "--json"]
    )
    assert shown["config"] == best["config"] and shown["seed"] == best["seed"]
    assert shown["env"]["torch"] and shown["config_hash"]

    rerun = _json(
        capsys, ["rerun", "cli-digits", str(best["trial"]), "--storage", storage, "--json"]
    )
    assert rerun["identical"] and rerun["new"] == rerun["original"] == best["value"]

    # Running the same spec again continues the study: the budget is spent, nothing runs.
    assert main(["run", str(spec_file), "--storage", storage, "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert sum(again["states"].values()) == 4
    # --trials raises the budget of the study; resume continues with the stored spec.
    assert main(["run", str(spec_file), "--storage", storage, "--trials", "5", "--json"]) == 0
    assert sum(json.loads(capsys.readouterr().out)["states"].values()) == 5
    listed = _json(capsys, ["ls", "--storage", storage, "--json"])
    assert [s["name"] for s in listed] == ["cli-digits"] and listed[0]["trials"] == 5


@pytest.mark.slow
def test_diverging_config_is_recorded_and_the_study_goes_on(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "diverge.yaml"
    spec.write_text(
        textwrap.dedent(
            """\
            name: diverge
            task: digits-mlp
            strategy: grid
            budget: {epochs: 2}
            space:
              lr: [1000.0, 0.01]
              optimizer: {choice: {sgd: {momentum: 0.9}}}
            """
        )
    )
    assert main(["run", str(spec), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["states"] == {"FAILED": 1, "COMPLETE": 1}
    status = _json(capsys, ["status", "diverge", "--json"])
    (reason,) = status["failures"]
    assert reason.startswith("TrialDiverged: loss")
    assert status["best"]["config"]["lr"] == 0.01


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["status", "missing"], "error: no study named 'missing'"),
        (["run", "nope.yaml"], "error: nope.yaml: no such file"),
        (["validate", "bad.yaml"], "error: bad.yaml:3: strategy: unknown strategy 'tpee'"),
        (["plot", "x", "--kind", "pie"], "error: no study named 'x'"),
    ],
)
def test_bad_input_exits_2_with_a_one_line_reason(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.yaml").write_text("task: digits-mlp\nspace: {lr: 0.1}\nstrategy: tpee\n")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(message), err
    assert len(err.strip().splitlines()) == 1


def test_validate_checks_configs_against_the_recipe(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.yaml").write_text(
        "task: digits-mlp\nspace:\n  lr: 0.1\n  optimizer: {choice: {adam: {}, sgdd: {}}}\n"
    )
    assert main(["validate", "s.yaml"]) == 2
    assert "Unknown optimizer 'sgdd'" in capsys.readouterr().err
    (tmp_path / "ok.yaml").write_text(SPEC)
    assert main(["validate", "ok.yaml"]) == 0
    assert "ok" in capsys.readouterr().out


def test_the_installed_script_reports_exit_codes(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "hptune",
            "status",
            "nothing",
            "--storage",
            f"sqlite:///{tmp_path}/x.db",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: no study named 'nothing'")
