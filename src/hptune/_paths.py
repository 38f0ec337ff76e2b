"""Where names become paths, and what the file system says of a path: the one way a study
name becomes a file or folder name, whether a file is a SQLite database, whether a folder
takes new files."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

#: The first 16 bytes of every SQLite database file.
SQLITE_HEADER = b"SQLite format 3\x00"


def file_name(name: str) -> str:
    """A study name made safe as one file or folder name: every character but letters,
    digits, ``.``, ``_`` and ``-`` becomes ``_``, and leading dots go (``../../x`` gives
    ``_.._x``: a name can never climb out of the folder it is put in). The one place
    names become file names."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".")
    return safe or "_"


def is_sqlite_file(path: str | Path) -> bool:
    """Whether ``path`` is an existing file that starts as a SQLite database does."""
    try:
        with open(path, "rb") as f:
            return f.read(len(SQLITE_HEADER)) == SQLITE_HEADER
    except OSError:
        return False


def make_a_file_in(folder: str | Path) -> None:
    """Make a file in ``folder`` and remove it at once; raise the OSError when that fails.
    Permissions alone do not tell (``/proc``, a read-only mount, root's access)."""
    with tempfile.TemporaryFile(dir=folder):
        pass
