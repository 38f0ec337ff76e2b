"""Open the storage a study lives in: a database URL, an Optuna storage, or memory.

SQLite files get two settings on every connection: ``journal_mode=WAL`` (readers, such as
optuna-dashboard or ``hptune report``, never block the driver's writes, and the reverse)
and ``synchronous=NORMAL`` (a commit no longer waits for the disk: the driver writes a dozen
small transactions per trial, which ``FULL`` made cost ~15 ms each). Together they keep the
database consistent through any crash of the program; a power failure may lose the last
few trials' writes. WAL needs a local file system (not NFS), as SQLite documents.
"""

from __future__ import annotations

from typing import Any

import optuna

from hptune.exceptions import ConfigError


def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def open_storage(storage: str | optuna.storages.BaseStorage | None) -> Any:
    """The Optuna storage for ``storage`` (see the module docstring for SQLite)."""
    if storage is None:
        return optuna.storages.InMemoryStorage()
    if isinstance(storage, optuna.storages.BaseStorage):
        return storage
    if not isinstance(storage, str):
        raise ConfigError(
            f"storage must be a database URL such as 'sqlite:///hptune.db', an Optuna "
            f"storage, or None (in memory); got {storage!r}."
        )
    if not storage.startswith("sqlite:") or storage.endswith(":memory:"):
        return storage  # Optuna builds the storage from the URL
    import sqlalchemy  # Optuna's own dependency for RDB storage

    rdb = optuna.storages.RDBStorage(storage)
    sqlalchemy.event.listen(rdb.engine, "connect", _sqlite_pragmas)
    rdb.engine.dispose()  # connections opened before the listener lack the settings
    return rdb
