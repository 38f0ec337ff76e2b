"""The ``hptune`` command line. See :mod:`hptune.cli._app` for exit codes."""

from __future__ import annotations

from hptune.cli import _commands  # noqa: F401  (registers the commands on `app`)
from hptune.cli._app import app, main

__all__ = ["app", "main"]
