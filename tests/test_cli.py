"""The ``hptune`` CLI end to end: real specs, real training, real SQLite files."""

import json
import subprocess
import sys
import textwrap

import pytest
import yaml

from hptune.cli import main
from hptune.cli._progress import fmt
from hptune.study._storage import open_storage

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
        (["run", "ok.yaml", "--trials-per-device", "0"], "error: --trials-per-device must be >= 1"),
    ],
)
def test_bad_input_exits_2_with_a_one_line_reason(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    open_storage("sqlite:///hptune.db")  # a database without those studies
    (tmp_path / "bad.yaml").write_text("task: digits-mlp\nspace: {lr: 0.1}\nstrategy: tpee\n")
    (tmp_path / "ok.yaml").write_text("task: digits-mlp\nspace: {lr: 0.1}\n")
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
    open_storage(f"sqlite:///{tmp_path}/x.db")
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


# -- usage errors and Ctrl-C ---------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["show", "x", "abc"],
        ["run"],
        ["run", "x.yaml", "--bogus"],
        ["statu", "x"],
        ["run", "x.yaml", "--trials", "abc"],
    ],
)
def test_usage_errors_exit_2_with_one_line_and_no_traceback(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: hptune") and err.count("\n") == 1, err  # not click's four
    assert "-h` for help)" in err and "Traceback" not in err


def test_ctrl_c_exits_130_and_says_what_is_kept(monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("hptune.cli._commands.load_study", interrupted)
    assert main(["status", "x", "--storage", "sqlite://"]) == 130
    assert capsys.readouterr().err.startswith(
        "interrupted: completed trials are kept; continue with `hptune resume`."
    )


# -- storage -------------------------------------------------------------------------------

BAD_DIR = "sqlite:////nonexistent/dir/x.db"


@pytest.mark.parametrize(
    "argv",
    [
        ["status", "s"],
        ["best", "s"],
        ["show", "s", "0"],
        ["rerun", "s", "0"],
        ["resume", "s"],
        ["report", "s"],
        ["plot", "s"],
        ["ls"],
        ["run", "spec.yaml"],
    ],
)
def test_a_storage_in_a_missing_directory_is_a_one_line_error(spec_file, capsys, argv):
    assert main([*argv, "--storage", BAD_DIR]) == 2
    captured = capsys.readouterr()
    where = "spec.yaml: storage: " if argv[0] == "run" else ""  # run checks its spec first
    assert captured.err == (
        f"error: {where}cannot open storage '{BAD_DIR}': the directory /nonexistent/dir does not "
        "exist; create it (mkdir -p) or fix the path.\n"
    )
    assert captured.out == ""  # nothing drawn before the error, not even `run`'s header


@pytest.mark.parametrize(
    "argv",
    [
        ["ls"],
        ["status", "s"],
        ["best", "s"],
        ["show", "s", "0"],
        ["rerun", "s", "0"],
        ["report", "s"],
        ["plot", "s"],
    ],
)
def test_reading_a_sqlite_file_that_does_not_exist_says_so_and_creates_nothing(
    tmp_path, monkeypatch, capsys, argv
):
    monkeypatch.chdir(tmp_path)
    assert main([*argv, "--storage", "sqlite:///typo.db"]) == 2
    assert capsys.readouterr().err.startswith(
        f"error: cannot open storage 'sqlite:///typo.db': no database file at {tmp_path}/typo.db;"
    )
    assert list(tmp_path.iterdir()) == []


def test_an_unreachable_database_server_is_a_one_line_error(capsys):
    url = "postgresql+psycopg://nobody@127.0.0.1:1/db"  # port 1: nothing listens there
    assert main(["status", "s", "--storage", url]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot open storage '{url}': ") and err.count("\n") == 1


# -- a study with every kind of trial ------------------------------------------------------

MIXED = """\
name: mixed
task: digits-mlp
seed: 3
strategy: random
pruner: {name: median, n_startup_trials: 1, n_warmup_steps: 0}
budget: {trials: 6, epochs: 3}
space:
  lr: loguniform(1e-3, 50)
  batch_size: choice(64, 128)
  optimizer: {choice: {adam: {}, sgd: {momentum: uniform(0.8, 0.95)}}}
  model: {width: 16}
"""


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """A real run of digits-mlp whose trials COMPLETE, are PRUNED, and diverge (FAILED)
    with reasons that differ only in numbers. Returns (storage URL, {state: [records]})."""
    folder = tmp_path_factory.mktemp("mixed")
    (folder / "mixed.yaml").write_text(MIXED)
    url = f"sqlite:///{folder / 'mixed.db'}"
    assert main(["run", str(folder / "mixed.yaml"), "--storage", url, "--json"]) == 0
    from hptune.study import load_study

    by_state: dict = {}
    for record in load_study("mixed", url).trials:
        by_state.setdefault(record.state, []).append(record)
    # The premise of the tests that use it:
    assert set(by_state) == {"COMPLETE", "PRUNED", "FAILED"}, by_state
    reasons = {r.failure_reason for r in by_state["FAILED"]}
    assert len(reasons) == len(by_state["FAILED"]) >= 2, reasons
    assert all(r.startswith("TrialDiverged: loss exploded") for r in reasons), reasons
    return url, by_state


def test_status_groups_failure_reasons_that_differ_only_in_numbers(mixed, capsys):
    url, by_state = mixed
    n = len(by_state["FAILED"])
    capsys.readouterr()
    assert main(["status", "mixed", "--storage", url]) == 0
    failed = [line for line in capsys.readouterr().out.splitlines() if "failed ×" in line]
    first = min(by_state["FAILED"], key=lambda r: r.number).failure_reason
    assert failed == [f"  failed ×{n}: {first} (and {n - 1} alike, numbers differ)"]
    status = _json(capsys, ["status", "mixed", "--storage", url, "--json"])
    assert status["failures"] == {first: n}


@pytest.mark.parametrize("state", ["PRUNED", "FAILED", "COMPLETE"])
def test_rerun_reproduces_what_the_trial_did(mixed, capsys, state):
    url, by_state = mixed
    record = by_state[state][-1]
    capsys.readouterr()
    assert main(["rerun", "mixed", str(record.number), "--storage", url]) == 0
    out = capsys.readouterr().out
    assert out.endswith("identical\n"), out
    if state == "PRUNED":
        step = max(record.intermediate_values)
        assert f"stopping after epoch {step} as the pruner did" in out
        assert f"original: {fmt(record.intermediate_values[step])} (at epoch {step})" in out
    if state == "FAILED":
        assert f"rerun:    failed: {record.failure_reason}\n" in out
    result = _json(capsys, ["rerun", "mixed", str(record.number), "--storage", url, "--json"])
    assert result["identical"] and result["state"] == result["original_state"] == state


def test_rerun_of_a_missing_trial_fails_before_saying_it_reruns(mixed, capsys):
    url, _ = mixed
    capsys.readouterr()
    assert main(["rerun", "mixed", "99", "--storage", url]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "error: study 'mixed' has no trial 99; trials are 0..5.\n"


def test_output_files_go_into_folders_made_for_them(mixed, tmp_path, capsys):
    url, _ = mixed
    for argv, path in [
        (["report", "-o"], tmp_path / "a" / "b" / "r.html"),
        (["plot", "--kind", "lr", "-o"], tmp_path / "c" / "lr.png"),
        (["best", "--export"], tmp_path / "d" / "best.yaml"),
    ]:
        assert main([argv[0], "mixed", "--storage", url, *argv[1:], str(path)]) == 0
        assert path.stat().st_size > 0
    capsys.readouterr()
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    target = blocker / "r.html"
    assert main(["report", "mixed", "--storage", url, "-o", str(target)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot write the report to {target}: ") and err.count("\n") == 1


def test_report_and_plot_print_json(mixed, tmp_path, capsys):
    url, _ = mixed
    out = ["-o", str(tmp_path / "r.html"), "--json"]
    report = _json(capsys, ["report", "mixed", "--storage", url, *out])
    assert report["report"] == str(tmp_path / "r.html")
    assert [a["kind"] for a in report["advice"]] == ["failures"]
    plot = _json(
        capsys,
        [
            "plot",
            "mixed",
            "--kind",
            "curves",
            "--storage",
            url,
            "-o",
            str(tmp_path / "c.png"),
            "--json",
        ],
    )
    assert plot == {"plot": str(tmp_path / "c.png"), "kind": "curves"}


def test_a_changed_spec_is_refused_with_what_changed(mixed, capsys, tmp_path):
    url, by_state = mixed
    spec = tmp_path / "mixed.yaml"
    spec.write_text(MIXED.replace("epochs: 3", "epochs: 4") + "training: {grad_clip: 1.0}\n")
    capsys.readouterr()
    assert main(["run", str(spec), "--storage", url]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"error: {spec}:1: name: study 'mixed' was run with a different spec: budget.epochs 3 -> 4, "
        "training.grad_clip (unset) -> 1.0; its trials would not be comparable with new ones. "
        "Run it as a new study (--name NEW, or another name: in the spec), or restore those "
        "values to continue it.\n"
    )
    from hptune.runner import stored_spec
    from hptune.study import load_study

    assert stored_spec(load_study("mixed", url)).budget.epochs == 3  # not overwritten


# -- lr-find -------------------------------------------------------------------------------


def test_lr_find_says_when_it_found_no_range_and_still_saves_the_plot(spec_file, tmp_path, capsys):
    plot = tmp_path / "new" / "lr.png"  # a folder that does not exist yet
    # Two steps are too few for any range to be read off the curve.
    assert main(["lr-find", str(spec_file), "--n-steps", "2", "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    assert "no suggested lr or search range: " in out
    assert out.endswith(f"plot saved to {plot}\n") and plot.stat().st_size > 0
    data = _json(
        capsys, ["lr-find", str(spec_file), "--n-steps", "2", "--plot", str(plot), "--json"]
    )
    assert data["suggested_range"] is None and data["plot"] == str(plot)


# -- validate and run check what trials would reject ---------------------------------------


def test_run_refuses_a_spec_whose_trials_would_all_fail_before_creating_a_study(
    spec_file, tmp_path, capsys
):
    spec_file.write_text(SPEC.replace("model: {width: 32}", "model: {width: 32, bogus: 3}"))
    assert main(["run", str(spec_file), "--storage", "sqlite:///studies.db"]) == 2
    assert capsys.readouterr().err == (
        f"error: {spec_file}:14: space.model.bogus: not an option of task 'digits-mlp'; valid "
        "options: depth, dropout, width. Fix or remove the key.\n"
    )
    assert not (tmp_path / "studies.db").exists()


@pytest.mark.parametrize("argv", [["ls"], ["status", "s"], ["run", "spec.yaml"]])
def test_another_programs_sqlite_database_is_refused_and_left_unchanged(
    spec_file, tmp_path, monkeypatch, capsys, argv
):
    import sqlite3

    monkeypatch.chdir(tmp_path)
    app = tmp_path / "app.db"
    with sqlite3.connect(app) as db:
        db.execute("CREATE TABLE customers (id INTEGER)")
    db.close()
    before = app.read_bytes()
    assert main([*argv, "--storage", f"sqlite:///{app}"]) == 2
    err = capsys.readouterr().err
    assert "is another program's SQLite database (tables customers)" in err
    assert err.count("\n") == 1 and app.read_bytes() == before


@pytest.mark.parametrize(
    ("storage", "says"),
    [
        ("not a url", "not a database URL"),
        ("redis://localhost/0", "no database kind 'redis' here"),
        ("sqlite:///{tmp}/notes.txt", "notes.txt is not a SQLite database"),
        ("sqlite:////proc/hptune.db", "cannot make /proc/hptune.db"),
    ],
)
def test_validate_refuses_the_storages_run_refuses(spec_file, tmp_path, capsys, storage, says):
    """validate said ok to each of these; run then refused it (or failed in it)."""
    (tmp_path / "notes.txt").write_text("my notes\n")
    url = storage.format(tmp=tmp_path)
    spec_file.write_text(SPEC + f"storage: '{url}'\n")
    assert main(["validate", str(spec_file)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {spec_file}:15: storage: ") and says in err
    assert err.count("\n") == 1
    assert (tmp_path / "notes.txt").read_text() == "my notes\n"
