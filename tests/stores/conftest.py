"""The ``store`` fixture: every backend, each on a fresh, isolated namespace."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import POSTGRES_DSN, REDIS_URL, require_service
from tokenward.stores.base import SessionStore
from tokenward.stores.memory import MemoryStore

BACKENDS = ["memory", "sqlite", "redis", "redis-cluster", "postgres"]


async def open_backend(
    name: str, tmp_path: Path, request: pytest.FixtureRequest | None = None
) -> SessionStore:
    """Open a fresh store of backend ``name``; Redis and PostgreSQL get a unique namespace.

    ``redis-cluster`` runs on the session's ``redis_cluster`` fixture, got through
    ``request``.
    """
    if name == "memory":
        return MemoryStore()
    if name == "sqlite":
        from tokenward.stores.sqlite import SQLiteStore

        return await SQLiteStore.open(tmp_path / "tokenward.db")
    namespace = "t" + uuid.uuid4().hex[:12]
    if name in ("redis", "redis-cluster"):
        from tokenward.stores.redis import RedisStore

        if name == "redis":
            require_service("Redis", "127.0.0.1", 6379)
            return await RedisStore.connect(REDIS_URL, prefix=namespace)
        assert request is not None, "the redis-cluster backend needs the fixture request"
        url: str = request.getfixturevalue("redis_cluster").url
        return await RedisStore.connect(url, prefix=namespace)
    require_service("PostgreSQL", "127.0.0.1", 5432)
    from tokenward.stores.postgres import PostgresStore

    return await PostgresStore.connect(POSTGRES_DSN, schema=namespace)


async def drop_backend(store: SessionStore) -> None:
    """Remove what a test store created (Redis keys, PostgreSQL schema), then close it."""
    drop = getattr(store, "drop", None)
    if drop is not None:
        await drop()
    await store.close()


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SessionStore]:
    backend = await open_backend(request.param, tmp_path, request)
    try:
        yield backend
    finally:
        await drop_backend(backend)
