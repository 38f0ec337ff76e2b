"""Fixtures of the task tests: a private data cache and single-threaded torch."""

from __future__ import annotations

import pytest

from hptune.tasks import clear_caches


@pytest.fixture(scope="session")
def shared_cache_dir(tmp_path_factory: pytest.TempPathFactory):
    """One disk cache for the session, so MNIST-1D is generated once, never in ~/.cache."""
    return tmp_path_factory.mktemp("hptune-cache")


@pytest.fixture(autouse=True)
def _isolated_cache(monkeypatch: pytest.MonkeyPatch, shared_cache_dir):
    monkeypatch.setenv("HPTUNE_CACHE_DIR", str(shared_cache_dir))


@pytest.fixture
def fresh_cache(monkeypatch: pytest.MonkeyPatch, tmp_path):
    """An empty disk cache and empty in-process caches: the next load generates the data."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("HPTUNE_CACHE_DIR", str(cache))
    clear_caches()
    yield cache
    clear_caches()
