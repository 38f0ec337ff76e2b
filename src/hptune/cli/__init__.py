"""The ``hptune`` command line. See :mod:`hptune.cli._app` for exit codes.

Nothing heavy is imported here: the ``hptune`` script imports this module first, and a
Ctrl-C while the commands' modules load (torch, a second or two) is answered by
:func:`main` with exit code 130 and one line, not a traceback.
"""

from __future__ import annotations

import sys
from typing import Any

from hptune.cli._codes import INTERRUPTED


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``hptune`` script; returns the exit code."""
    try:
        from hptune.cli import _commands  # noqa: F401  (registers the commands on `app`)
        from hptune.cli._app import main as run
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return INTERRUPTED
    return run(argv)


def __getattr__(name: str) -> Any:
    """``hptune.cli.app``, the Typer app with every command, made on first use."""
    if name == "app":
        from hptune.cli import _commands  # noqa: F401
        from hptune.cli._app import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["app", "main"]
