"""Shared pytest fixtures. One section per external service; keep each section small.

Optional services (a PostgreSQL server, Ray) are skipped where they are not installed, but
in CI (``CI=true``) a missing service fails the test instead: CI installs everything, so a
skip there would hide a broken set-up.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # imported by the fixtures that need it: collecting must not need psycopg
    from tests import _pg


def in_ci() -> bool:
    """True when running under CI (``CI=true``, as GitHub Actions and most runners set it)."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def skip_or_fail(reason: str) -> None:
    """Skip the test for a missing optional dependency; fail instead in CI."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: missing dependencies fail instead of skipping)")
    pytest.skip(reason)


# --- torch threads -------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """Tests train tiny models: extra intra-op threads only add contention on a 2-core box.
    (Worker processes set their own threads; see hptune.execution.plan_workers.)"""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# --- PostgreSQL ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[_pg.PostgresServer]:
    """A throwaway PostgreSQL cluster on 127.0.0.1, started once per test session."""
    from tests import _pg

    bin_dir = _pg.find_bin_dir()
    if bin_dir is None:
        skip_or_fail("PostgreSQL server binaries not found: apt-get install postgresql")
    server = _pg.start_server(bin_dir)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_url(postgres_server: _pg.PostgresServer) -> str:
    """URL of the session's database ``hptune_test``, shared by every test that uses it:
    ``postgresql+psycopg://postgres@127.0.0.1:PORT/hptune_test``. Use unique study names,
    or :func:`postgres_db_url` for a database of your own."""
    return postgres_server.create_database("hptune_test")


@pytest.fixture
def postgres_db_url(postgres_server: _pg.PostgresServer) -> Iterator[str]:
    """URL of a fresh, empty database for this test only; dropped afterwards."""
    name = f"hptune_{uuid.uuid4().hex[:12]}"
    url = postgres_server.create_database(name)
    try:
        yield url
    finally:
        postgres_server.drop_database(name)
