"""Many processes opening one fresh database at the same moment all succeed: the losers of
the race to create Optuna's tables open it again (SQLite and PostgreSQL)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

OPEN = textwrap.dedent(
    """
    import os, sys, time
    from hptune.study._storage import open_storage
    go = sys.argv[2]
    print("ready", flush=True)
    while not os.path.exists(go):
        time.sleep(0.001)
    open_storage(sys.argv[1])
    print("opened", flush=True)
    """
)


def _open_at_once(url: str, go_file, n: int) -> list[tuple[int, str, str]]:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN, url, str(go_file)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(n)
    ]
    for proc in procs:  # each has imported hptune and waits at the barrier
        assert proc.stdout.readline().strip() == "ready", proc.communicate()
    time.sleep(0.1)
    go_file.touch()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        results.append((proc.returncode, out.strip(), err.strip()[-300:]))
    return results


@pytest.mark.slow
def test_processes_opening_a_fresh_sqlite_file_at_once_all_succeed(tmp_path):
    results = _open_at_once(f"sqlite:///{tmp_path / 'fresh.db'}", tmp_path / "go", n=8)
    assert results == [(0, "opened", "")] * 8


@pytest.mark.slow
def test_processes_opening_a_fresh_postgres_database_at_once_all_succeed(postgres_db_url, tmp_path):
    results = _open_at_once(postgres_db_url, tmp_path / "go", n=6)
    assert results == [(0, "opened", "")] * 6


def test_a_lost_sqlite_schema_race_is_retried_and_other_errors_are_not(tmp_path, monkeypatch):
    import optuna
    import sqlalchemy.exc

    from hptune.exceptions import HptuneError
    from hptune.study import _storage

    real, calls = optuna.storages.RDBStorage, []

    def losing_once(url, *args, **kwargs):
        calls.append(url)
        if len(calls) == 1:  # what SQLite says when another process created the table first
            orig = Exception("table alembic_version already exists")
            raise sqlalchemy.exc.OperationalError("CREATE TABLE alembic_version", {}, orig)
        return real(url, *args, **kwargs)

    monkeypatch.setattr(optuna.storages, "RDBStorage", losing_once)
    _storage.open_storage(f"sqlite:///{tmp_path / 'a.db'}")
    assert len(calls) == 2

    def unreadable(url, *args, **kwargs):
        calls.append(url)
        orig = Exception("unable to open database file")
        raise sqlalchemy.exc.OperationalError("connect", {}, orig)

    calls.clear()
    monkeypatch.setattr(optuna.storages, "RDBStorage", unreadable)
    with pytest.raises(HptuneError, match="unable to open database file"):
        _storage.open_storage(f"sqlite:///{tmp_path / 'b.db'}")
    assert len(calls) == 1  # not a race: reported at once
