"""Where names become paths: the one way a study name becomes a file or folder name."""

from __future__ import annotations

import re


def file_name(name: str) -> str:
    """A study name made safe as one file or folder name: every character but letters,
    digits, ``.``, ``_`` and ``-`` becomes ``_``, and leading dots go (``../../x`` gives
    ``_.._x``: a name can never climb out of the folder it is put in). The one place
    names become file names."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".")
    return safe or "_"
