"""What the CLI prints can be trusted: user text is shown as it is (no markup, no raw
escape sequences), passwords never appear, names never become paths outside the output
folder, and a run says why it stopped."""

from __future__ import annotations

import json

import pytest

from hptune._paths import file_name
from hptune.cli import main
from hptune.runner._base import OUTPUT_DIR, spec_to_dict
from hptune.spec import parse_spec
from hptune.study._storage import printable_url

USER = """\
name: {name}
task: tests.execution.objectives:double
seed: 0
strategy: {strategy}
budget: {{trials: {trials}}}
space:
  x: {space}
"""


def _spec(tmp_path, name="t", strategy="random", trials=3, space="uniform(0, 1)"):
    path = tmp_path / "spec.yaml"
    text = USER.format(name=name, strategy=strategy, trials=trials, space=space)
    path.write_text(text)
    return path


def test_a_password_is_masked_in_messages_and_in_the_stored_spec():
    url = "postgresql+psycopg://me:s3cr%40t@db.example:5432/hptune"
    assert printable_url(url) == "postgresql+psycopg://me:***@db.example:5432/hptune"
    assert printable_url("sqlite:///hptune.db") == "sqlite:///hptune.db"
    assert "s3cr" not in printable_url("weird://me:s3cr@t@host")
    spec = parse_spec(f"name: n\ntask: digits-mlp\nstorage: {url}\nspace: {{lr: 0.1}}\n")
    assert "s3cr" not in json.dumps(spec_to_dict(spec))
    # A password unencoded, with an @ of its own, and passwords in query parameters.
    assert printable_url("postgresql://al:PW@c3@h/db") == "postgresql://al:***@h/db"
    assert printable_url("postgresql://al@h/db?sslmode=require&password=PWd4&sslpassword=x") == (
        "postgresql://al@h/db?sslmode=require&password=***&sslpassword=***"
    )
    query = "postgresql+psycopg://al@db:5432/h?password=QuerySecretPW7"
    spec = parse_spec(f"name: n\ntask: digits-mlp\nstorage: '{query}'\nspace: {{lr: 0.1}}\n")
    assert "QuerySecretPW7" not in json.dumps(spec_to_dict(spec))


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://me:hunter2@127.0.0.1:1/nothing",
        "postgresql+psycopg://me@127.0.0.1:1/nothing?password=hunter2",
    ],
)
def test_a_storage_error_never_prints_the_password(capsys, url):
    assert main(["ls", "--storage", url]) == 2
    err = capsys.readouterr().err
    assert "hunter2" not in err and "127.0.0.1:1" in err and "***" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize("name", ["x[/]", "[bold]b[/bold]", "a\x1b[2Jb"])
def test_names_and_values_are_printed_as_they_are(name, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    spec = _spec(tmp_path, name=json.dumps(name), space="choice('v[/]', 'w\\x1b[31m')")
    spec.write_text(
        spec.read_text().replace(
            "task: tests.execution.objectives:double", "task: tests.execution.objectives:constant"
        )
    )
    assert main(["run", str(spec)]) == 0
    assert main(["status", name]) == 0
    assert main(["ls"]) == 0
    printed = capsys.readouterr().out
    assert "\x1b[2J" not in printed and "\x1b[31m" not in printed
    assert name.replace("\x1b", "\\x1b") in printed


def test_a_study_name_never_becomes_a_path_outside_the_output_folder():
    assert file_name("../../x") == "_.._x" and "/" not in file_name("a/../b")
    assert file_name("..") == "_" and file_name("mnist1d-mlp") == "mnist1d-mlp"
    spec = parse_spec(
        "name: ../../x\ntask: digits-mlp\ntraining: {save_best: true}\nspace: {lr: 0.1}\n"
    )
    from hptune.runner import make_objective

    assert make_objective(spec).output_dir == f"{OUTPUT_DIR}/_.._x"


def test_help_and_version(capsys):
    assert main(["-h"]) == 0 and "Usage: hptune" in capsys.readouterr().out
    assert main(["--version"]) == 0 and capsys.readouterr().out.startswith("hptune 0.")


def test_a_run_says_why_it_stopped_and_counts_the_whole_study(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    spec = _spec(tmp_path, trials=3)
    assert main(["run", str(spec)]) == 0
    first = capsys.readouterr().out
    assert first.startswith("running study t ")
    assert "stopped: the trial budget was reached (3 of 3 trials count" in first
    assert main(["status", "t", "--json"]) == 0
    stopped = json.loads(capsys.readouterr().out)["stopped"]
    assert main(["run", str(spec)]) == 0
    again = capsys.readouterr().out
    assert again.startswith("continuing study t ")
    # The study's stop record stays the run's that ran the trials: when and why they
    # stopped; the run that found nothing to do says so on its own line.
    assert "stopped: the trial budget was reached (3 of 3 trials count" in again
    assert "nothing run now: the trial budget was already spent; raise --trials or " in again
    assert main(["status", "t", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["stopped"] == stopped
    assert main(["run", str(spec), "--trials", "5"]) == 0
    more = capsys.readouterr().out
    assert "trial 3 complete" in more and "trial 0 complete" not in more  # only new trials
    assert "5 of 5 trials count" in more


def test_a_first_grid_run_is_running_not_continuing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    spec = _spec(tmp_path, strategy="grid", trials=10, space="choice(1.0, 2.0)")
    assert main(["run", str(spec)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("running study t ")
    assert "stopped: nothing was left to run (2 of 10 trials count" in printed
    assert "nothing run now" not in printed  # its points wait in the study before they run


def test_a_user_objectives_value_is_not_called_val_accuracy(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(_spec(tmp_path))]) == 0
    printed = capsys.readouterr().out
    assert ": value = " in printed and "val_accuracy" not in printed


def test_a_study_run_from_python_is_not_said_to_have_had_a_cli_flag(tmp_path, capsys):
    from hptune.space import uniform
    from hptune.study import create_study

    url = f"sqlite:///{tmp_path / 'py.db'}"
    study = create_study({"x": uniform(0, 1)}, name="py", storage=url, seed=0, direction="maximize")
    study.optimize(lambda config, trial: config["x"], n_trials=2)
    assert main(["status", "py", "--storage", url]) == 0
    printed = capsys.readouterr().out
    assert "stopped: the number of trials it was asked for had started (2 trials" in printed
    assert "--trials" not in printed


def test_show_leaves_out_what_was_not_recorded(tmp_path, monkeypatch, capsys):
    from hptune.space import uniform
    from hptune.study import create_study

    monkeypatch.chdir(tmp_path)  # no git repository here: no commit to record
    url = f"sqlite:///{tmp_path / 'py.db'}"
    study = create_study({"x": uniform(0, 1)}, name="py", storage=url, seed=0, direction="maximize")
    study.optimize(lambda config, trial: config["x"], n_trials=1)
    assert study.trials[0].env["git_commit"] is None  # the test's premise
    assert main(["show", "py", "0", "--storage", url]) == 0
    printed = capsys.readouterr().out
    assert "env: " in printed and "None" not in printed


@pytest.mark.parametrize(
    "argv",
    [
        ["report", "db", "-o", "{db}"],
        ["best", "db", "--export", "{db}"],
        ["plot", "db", "-o", "{other}"],  # another database, named like a plot
    ],
)
def test_no_output_is_written_over_a_sqlite_database(tmp_path, capsys, argv):
    """``hptune report NAME -o hptune.db`` once replaced the study's own storage with a
    page of HTML. No command writes over a SQLite file, the storage or another."""
    from hptune.space import uniform
    from hptune.study import create_study, load_study

    db, other = tmp_path / "hptune.db", tmp_path / "other.png"
    url = f"sqlite:///{db}"
    study = create_study({"x": uniform(0, 1)}, name="db", storage=url, seed=0, direction="maximize")
    study.optimize(lambda config, trial: config["x"], n_trials=2)
    create_study({"x": uniform(0, 1)}, name="o", storage=f"sqlite:///{other}", seed=0,
                 direction="maximize")  # fmt: skip
    target = other if "{other}" in argv else db
    before = target.read_bytes()
    args = [a.format(db=db, other=other) for a in argv]
    assert main([*args, "--storage", url]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "is a SQLite database" in err and err.count("\n") == 1
    assert target.read_bytes() == before
    assert len(load_study("db", url).trials) == 2


def test_a_trial_past_the_specs_trial_timeout_fails_and_the_run_ends(tmp_path, monkeypatch, capsys):
    """Without budget.trial_timeout a hung trial held the run forever (budget.timeout only
    stops new trials)."""
    monkeypatch.chdir(tmp_path)
    spec = _spec(tmp_path, trials=2)
    spec.write_text(
        spec.read_text()
        .replace("tests.execution.objectives:double", "tests.execution.objectives:sleep")
        .replace("budget: {trials: 2}", "budget: {trials: 2, trial_timeout: 1s}")
        .replace("x: uniform(0, 1)", "seconds: 600.0")
    )
    assert main(["run", str(spec)]) == 1  # no trial completed: both timed out
    capsys.readouterr()
    assert main(["status", "t", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["states"] == {"FAILED": 2}
    assert any("timed out after 1.0 s" in reason for reason in status["failures"])


def test_ctrl_c_while_the_commands_load_is_one_line_and_130(monkeypatch, capsys):
    """The hptune script imports hptune.cli, then main() loads the commands (torch: a
    second or two); a Ctrl-C then printed a 40-line KeyboardInterrupt traceback."""
    import sys

    import hptune.cli

    class CtrlC:
        def find_spec(self, name, path=None, target=None):
            if name == "hptune.cli._commands":
                raise KeyboardInterrupt
            return None

    monkeypatch.delitem(sys.modules, "hptune.cli._commands")
    monkeypatch.delattr(hptune.cli, "_commands")
    monkeypatch.setattr(sys, "meta_path", [CtrlC(), *sys.meta_path])
    assert hptune.cli.main(["--version"]) == 130
    assert capsys.readouterr().err == "interrupted\n"


def test_status_says_which_running_trials_lost_their_driver(tmp_path, capsys):
    """After a kill -9 of the driver its trials stay RUNNING until a driver reaps them;
    status showed 'running 2' as if they ran."""
    import socket
    import subprocess
    import sys

    from hptune.space import uniform
    from hptune.study import _optuna, create_study
    from hptune.study._liveness import LIVE

    url = f"sqlite:///{tmp_path / 'o.db'}"
    study = create_study({"x": uniform(0, 1)}, name="o", storage=url, seed=0, direction="maximize")
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    dead = {LIVE: {"driver": f"{socket.gethostname()}:{gone}:x", "beat": 0.0}}
    _optuna.new_trial(study.optuna_study, {}, dead)
    assert main(["status", "o", "--storage", url]) == 0
    printed = capsys.readouterr().out
    assert "running 1" in printed
    assert "1 of the running trials lost their driver (its process is gone)" in printed
