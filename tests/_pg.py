"""A throwaway PostgreSQL server for tests and benchmarks: start, create databases, stop.

Uses the server binaries of the ``postgresql`` package (``apt-get install postgresql``);
nothing is installed or configured system-wide. The cluster lives in a fresh temporary
directory, listens on 127.0.0.1 only (plus a Unix socket inside that directory), trusts
local connections, and is removed by :meth:`PostgresServer.stop`.

PostgreSQL refuses to run as root, so when we are root every server command runs as the
``postgres`` OS user, which the package creates.

Example:
    >>> server = start_server()                        # doctest: +SKIP
    >>> url = server.create_database("demo")           # doctest: +SKIP
    >>> url                                            # doctest: +SKIP
    'postgresql+psycopg://postgres@127.0.0.1:54123/demo'
    >>> server.stop()                                  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import psycopg
from psycopg import sql

HOST = "127.0.0.1"
SUPERUSER = "postgres"
_OS_USER = "postgres"
_COMMAND_TIMEOUT_S = 120
# Durability is worthless for a throwaway test cluster and costs seconds per test run.
_FAST_SETTINGS = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"


def find_bin_dir() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``, or ``None`` if not installed.

    Debian's binaries live in ``/usr/lib/postgresql/<major>/bin`` (not on ``PATH``); the
    newest major version wins, then any directory on ``PATH`` that has both programs.
    """

    def major(path: str) -> int:
        version = Path(path).parent.name
        return int(version) if version.isdigit() else -1

    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=major, reverse=True)
    candidates += os.environ.get("PATH", "").split(os.pathsep)
    for directory in candidates:
        if all(os.access(Path(directory, prog), os.X_OK) for prog in ("initdb", "pg_ctl")):
            return Path(directory)
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclasses.dataclass
class PostgresServer:
    """A running throwaway cluster. Create it with :func:`start_server`.

    Args:
        bin_dir: Directory of the server binaries.
        base_dir: Temporary directory holding ``data/`` (the cluster), ``sock/`` and
            ``server.log``; removed by :meth:`stop`.
        port: TCP port on 127.0.0.1.
    """

    bin_dir: Path
    base_dir: Path
    port: int

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    @property
    def log_file(self) -> Path:
        return self.base_dir / "server.log"

    def url(self, database: str) -> str:
        """SQLAlchemy URL (psycopg 3 driver) of ``database``, as Optuna's storage takes it."""
        return f"postgresql+psycopg://{SUPERUSER}@{HOST}:{self.port}/{database}"

    def connect(self, database: str = "postgres") -> psycopg.Connection:
        """An autocommit psycopg connection (``CREATE DATABASE`` cannot run in a transaction)."""
        return psycopg.connect(
            host=HOST, port=self.port, user=SUPERUSER, dbname=database, autocommit=True
        )

    def create_database(self, name: str) -> str:
        """Create database ``name`` and return its URL."""
        with self.connect() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop ``name``, closing any connections a test left open (``WITH (FORCE)``, PG 13+)."""
        with self.connect() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def stop(self) -> None:
        """Stop the server (fast shutdown: open sessions are disconnected) and delete its files."""
        try:
            if (self.data_dir / "postmaster.pid").exists():
                _run_as_server_user(
                    [self.bin_dir / "pg_ctl", "-D", self.data_dir, "-m", "fast", "-w", "stop"],
                    cwd=self.base_dir,
                )
        finally:
            shutil.rmtree(self.base_dir, ignore_errors=True)


def start_server(bin_dir: Path | None = None, attempts: int = 3) -> PostgresServer:
    """Initialise a cluster in a fresh temporary directory and start it on a free port.

    Retries on another port when the chosen one was taken in the meantime.

    Raises:
        FileNotFoundError: the server binaries are not installed.
        RuntimeError: the server did not start; the message holds the end of its log.
    """
    bin_dir = bin_dir or find_bin_dir()
    if bin_dir is None:
        raise FileNotFoundError("PostgreSQL server binaries not found: apt-get install postgresql")
    base_dir = Path(tempfile.mkdtemp(prefix="hptune-pg-"))
    try:
        _give_to_server_user(base_dir)
        _initdb(bin_dir, base_dir)
        for _ in range(attempts):
            server = PostgresServer(bin_dir, base_dir, free_port())
            if _pg_ctl_start(server):
                return server
        log = server.log_file.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"PostgreSQL did not start; end of {server.log_file}:\n{log}")
    except BaseException:
        shutil.rmtree(base_dir, ignore_errors=True)
        raise


def _initdb(bin_dir: Path, base_dir: Path) -> None:
    (base_dir / "sock").mkdir()
    _give_to_server_user(base_dir / "sock")
    _run_as_server_user(
        [
            bin_dir / "initdb",
            "-D", base_dir / "data",
            "--auth=trust",
            f"--username={SUPERUSER}",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ],
        cwd=base_dir,
    )  # fmt: skip


def _pg_ctl_start(server: PostgresServer) -> bool:
    options = f"-p {server.port} -h {HOST} -k {server.base_dir / 'sock'} {_FAST_SETTINGS}"
    command = [server.bin_dir / "pg_ctl", "-D", server.data_dir, "-o", options]
    command += ["-l", server.log_file, "-w", "start"]
    try:
        _run_as_server_user(command, cwd=server.base_dir)
    except ServerCommandError:
        return False
    return True


def _server_user() -> str | None:
    """The OS user to run server commands as: ``postgres`` when we are root, else ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(_OS_USER)
    except KeyError:
        raise RuntimeError(
            f"running as root, but there is no {_OS_USER!r} OS user to run PostgreSQL as "
            "(initdb refuses root): apt-get install postgresql creates it"
        ) from None
    return _OS_USER


def _give_to_server_user(path: Path) -> None:
    user = _server_user()
    if user is not None:
        shutil.chown(path, user=user, group=pwd.getpwnam(user).pw_gid)


class ServerCommandError(RuntimeError):
    """A server command (initdb, pg_ctl) exited non-zero; the message holds its output."""


def _run_as_server_user(command: list[str | Path], cwd: Path) -> None:
    user = _server_user()
    args = [str(part) for part in command]
    done = subprocess.run(
        args,
        cwd=cwd,
        user=user,
        group=pwd.getpwnam(user).pw_gid if user else None,
        extra_groups=[] if user else None,
        capture_output=True,
        text=True,
        timeout=_COMMAND_TIMEOUT_S,
    )
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip()[-2000:]
        raise ServerCommandError(f"{' '.join(args)} exited with {done.returncode}:\n{output}")
