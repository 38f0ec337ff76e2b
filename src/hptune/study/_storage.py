"""Open the storage a study lives in: a database URL, an Optuna storage, or memory.

SQLite files get two settings on every connection: ``journal_mode=WAL`` (readers, such as
optuna-dashboard or ``hptune report``, never block the driver's writes, and the reverse)
and ``synchronous=NORMAL`` (a commit no longer waits for the disk: the driver writes a dozen
small transactions per trial, which ``FULL`` made cost ~15 ms each). Together they keep the
database consistent through any crash of the program; a power failure may lose the last
few trials' writes. WAL needs a local file system (not NFS), as SQLite documents.

A URL that cannot be opened (a missing directory, an unreachable server, a missing database
driver) is a one-line :class:`~hptune.exceptions.HptuneError` naming the URL and the
problem, never a database library's traceback.
"""

from __future__ import annotations

import contextlib
import random
import time
from pathlib import Path
from typing import Any

import optuna

from hptune._paths import is_sqlite_file, make_a_file_in
from hptune._secrets import printable_url, scrub
from hptune.exceptions import ConfigError, HptuneError


def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def sqlite_file(url: str) -> Path | None:
    """The database file of a ``sqlite:`` URL; None for other URLs and in-memory SQLite."""
    if not url.startswith("sqlite:"):
        return None
    from sqlalchemy.engine import make_url  # Optuna's own dependency for RDB storage

    try:
        database = make_url(url).database
    except Exception:  # a malformed URL: opening it gives the error
        return None
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def open_storage(storage: str | optuna.storages.BaseStorage | None, *, create: bool = True) -> Any:
    """The Optuna storage for ``storage`` (see the module docstring for SQLite).

    Args:
        storage: A database URL, an Optuna storage (returned as is) or None (in memory).
        create: Whether a SQLite file that does not exist may be created. Commands that
            only read a study pass False, so a mistyped path is reported rather than
            replaced by a new empty database.

    Raises:
        HptuneError: The storage cannot be opened; the message names the URL and why.
    """
    if storage is None:
        return optuna.storages.InMemoryStorage()
    if isinstance(storage, optuna.storages.BaseStorage):
        return storage
    if not isinstance(storage, str):
        raise ConfigError(
            f"storage must be a database URL such as 'sqlite:///hptune.db', an Optuna "
            f"storage, or None (in memory); got {type(storage).__name__}."
        )
    check_sqlite_file(storage, create=create)
    rdb = _rdb_storage(storage)
    if sqlite_file(storage) is not None:
        import sqlalchemy

        sqlalchemy.event.listen(rdb.engine, "connect", _sqlite_pragmas)
        rdb.engine.dispose()  # connections opened before the listener lack the settings
    return rdb


#: Attempts at opening a database whose tables another process is creating at that moment.
_SCHEMA_ATTEMPTS = 10


def _rdb_storage(url: str) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage for ``url``, surviving a race on a fresh database.

    Optuna creates its tables when it first opens a database; several processes opening an
    empty database at once (drivers started together on every machine, or a reader such as
    ``hptune status`` while a run creates its file) collide there: PostgreSQL says
    "duplicate key value violates unique constraint" or "relation already exists" (Optuna
    issue 1092, whose advice is to create the schema first by hand), SQLite "table ...
    already exists" or "database is locked". The loser simply opens it again: by then the
    tables exist.
    """
    for attempt in range(_SCHEMA_ATTEMPTS):
        try:
            return optuna.storages.RDBStorage(url)
        except Exception as exc:  # SQLAlchemy, a missing driver, an incompatible schema
            if not _schema_race(exc) or attempt == _SCHEMA_ATTEMPTS - 1:
                raise HptuneError(
                    f"cannot open storage {printable_url(url)!r}: {scrub(_first_line(exc), url)}"
                ) from exc
            time.sleep(0.1 * (attempt + 1) * (1 + random.random()))
    raise AssertionError("unreachable")


def _schema_race(exc: BaseException) -> bool:
    """Whether opening a database failed because another process was creating its tables."""
    import sqlalchemy.exc

    if isinstance(exc, (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError)):
        return True  # PostgreSQL: a table or a type created twice
    if isinstance(exc, sqlalchemy.exc.OperationalError):
        # SQLite reports both as OperationalError; the driver's message is all it gives.
        text = str(exc.orig) if exc.orig is not None else str(exc)
        return "already exists" in text or "database is locked" in text
    return False


def check_storage_url(url: str) -> None:
    """Raise HptuneError unless ``url`` reads as a database URL whose database kind this
    Python can open (SQLAlchemy has a dialect for it); then the SQLite checks of
    :func:`check_sqlite_file`, for a study about to be made there. What ``validate``
    checks of a spec's storage, so that it passes what ``run`` opens."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise HptuneError(
            f"cannot open storage {printable_url(url)!r}: not a database URL "
            f"({scrub(_first_line(exc), url)}); write sqlite:///hptune.db or "
            "postgresql+psycopg://user@host/db."
        ) from None
    try:
        parsed.get_dialect()
    except NoSuchModuleError:
        raise HptuneError(
            f"cannot open storage {printable_url(url)!r}: no database kind "
            f"{parsed.drivername!r} here; hptune keeps studies in SQLite or PostgreSQL "
            "(sqlite:///hptune.db, postgresql+psycopg://...)."
        ) from None
    check_sqlite_file(url, create=True)
    path = sqlite_file(url)
    if path is not None and path.is_file() and path.stat().st_size:
        if not is_sqlite_file(path):
            raise HptuneError(
                f"cannot open storage {printable_url(url)!r}: {path} is not a SQLite "
                "database; give studies a file of their own."
            )
    elif path is not None and not path.exists():
        try:  # the folder must take the new database
            make_a_file_in(path.resolve().parent)
        except OSError as exc:
            raise HptuneError(
                f"cannot open storage {printable_url(url)!r}: cannot make {path} "
                f"({exc.strerror or exc}); choose a folder you can write."
            ) from None


def check_sqlite_file(url: str, *, create: bool) -> None:
    """Raise HptuneError when the SQLite file of ``url`` cannot be opened: it does not exist
    (and ``create`` is False), or its directory does not exist. Other URLs pass."""
    path = sqlite_file(url)
    if path is None:
        return
    folder = path.resolve().parent
    if not folder.is_dir():
        raise HptuneError(
            f"cannot open storage {printable_url(url)!r}: the directory {folder} does not "
            "exist; create it "
            "(mkdir -p) or fix the path."
        )
    if not create and not path.is_file():
        raise HptuneError(
            f"cannot open storage {printable_url(url)!r}: no database file at "
            f"{path.resolve()}; check the "
            "path (a relative sqlite:///name.db is relative to the working directory) or "
            "run a study there first with `hptune run`."
        )
    others = _foreign_tables(path)
    if others:
        raise HptuneError(
            f"cannot open storage {printable_url(url)!r}: {path} is another program's SQLite "
            f"database (tables {', '.join(others[:3])}{', ...' if len(others) > 3 else ''}), "
            "and opening it would add Optuna's tables to it; give studies a file of their own."
        )


def _foreign_tables(path: Path) -> list[str]:
    """The tables of an existing SQLite file at ``path`` when it holds tables but not
    Optuna's (an application's database); [] for a new, empty or Optuna database, or a
    file SQLite cannot read (opening it says why)."""
    import sqlite3

    if not path.is_file() or path.stat().st_size == 0:
        return []
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    except sqlite3.Error:
        return []
    tables = sorted(name for (name,) in rows if not name.startswith("sqlite_"))
    return [] if not tables or "studies" in tables else tables


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def is_storage_error(exc: BaseException) -> bool:
    """Whether ``exc`` is the storage failing (a full disk, a corrupt or vanished database,
    a lost server), as opposed to a bug or bad input."""
    import sqlite3

    import sqlalchemy.exc

    kinds = (optuna.exceptions.StorageInternalError, sqlalchemy.exc.SQLAlchemyError, sqlite3.Error)
    return isinstance(exc, kinds)


def storage_error_line(exc: BaseException) -> str:
    """The root cause of a storage error in one line (Optuna wraps the database's own)."""
    root = exc
    while root.__cause__ is not None and is_storage_error(root.__cause__):
        root = root.__cause__
    orig = getattr(root, "orig", None)  # SQLAlchemy keeps the driver's exception here
    return _first_line(orig if orig is not None else root)
