"""A storage that fails under a running study (a disk fault corrupting the SQLite file)
stops it with one line saying so, from Python and from the CLI; no traceback."""

from __future__ import annotations

import re

import pytest

import hptune
from hptune.cli import main
from hptune.exceptions import HptuneError
from tests.execution import objectives as obj

MESSAGE = "the study's storage failed: database disk image is malformed. Trials finished"


def test_a_corrupted_database_stops_the_study_with_one_line(tmp_path, monkeypatch):
    db = tmp_path / "c.db"
    monkeypatch.setenv("HPTUNE_TEST_DB", str(db))
    study = hptune.create_study(
        {"x": hptune.uniform(0, 1)}, storage=f"sqlite:///{db}", direction="maximize", seed=0
    )
    with pytest.raises(HptuneError, match=re.escape(MESSAGE)) as info:
        study.optimize(obj.corrupting, n_trials=10)
    assert "\n" not in str(info.value)


def test_the_cli_says_so_in_one_line_and_exits_2(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HPTUNE_TEST_DB", str(tmp_path / "c.db"))
    spec = tmp_path / "c.yaml"
    spec.write_text(
        "name: c\ntask: tests.execution.objectives:corrupting\nstorage: sqlite:///c.db\n"
        "seed: 0\nstrategy: random\nbudget: {trials: 10}\nspace:\n  x: uniform(0, 1)\n"
    )
    assert main(["run", str(spec), "--json"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {MESSAGE}") and err.count("\n") == 1


def test_a_database_file_deleted_during_the_run_stops_it_with_one_line(tmp_path):
    """SQLite wrote on into the deleted file, and the run ended saying its budget was
    reached: every result gone, no word of it."""
    import os

    from hptune.space import uniform
    from hptune.study import create_study

    db = tmp_path / "gone.db"
    study = create_study({"x": uniform(0, 1)}, name="g", storage=f"sqlite:///{db}", seed=0,
                         direction="maximize")  # fmt: skip

    def objective(config, trial):
        if trial.number == 2:
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(f"{db}{suffix}"):
                    os.remove(f"{db}{suffix}")
        return config["x"]

    with pytest.raises(HptuneError, match=re.escape(f"the study's database file {db} was")):
        study.optimize(objective, n_trials=5)
