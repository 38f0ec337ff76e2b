"""Import a framework for a test module, or skip it where the extra is not installed (CI,
which installs every extra, fails instead of skipping; see tests/conftest.py)."""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest

from tests.conftest import in_ci


def import_or_skip(name: str) -> ModuleType:
    if in_ci():
        return importlib.import_module(name)
    return pytest.importorskip(name, reason=f"{name} is not installed (an extra of hptune)")
