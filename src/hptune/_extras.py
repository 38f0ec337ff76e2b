"""Optional dependencies: imported where they are used, and a one-line error naming the
extra to install where they are missing."""

from __future__ import annotations

import importlib
from typing import Any

from hptune.exceptions import MissingExtraError


def require_extra(module: str, extra: str, user: str, package: str | None = None) -> Any:
    """Import ``module`` for ``user`` (what needs it, e.g. ``hptune.tracking.mlflow``) or
    raise :class:`MissingExtraError` naming ``package`` (default: the module's top-level
    name) and ``pip install 'hptune[extra]'``.

    Example:
        >>> require_extra("json", "none", "a doctest").__name__
        'json'
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        lines = str(err).strip().splitlines()
        why = lines[0] if lines else type(err).__name__
        raise MissingExtraError(
            f"{user} needs {package or module.split('.')[0]}: pip install 'hptune[{extra}]' "
            f"(import failed: {why})"
        ) from err
