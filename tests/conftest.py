"""Shared fixtures: real services (Redis, PostgreSQL) with a visible skip or a hard failure."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from typing import NoReturn

import pytest

from tests import rediscluster

REDIS_URL = os.environ.get("TOKENWARD_TEST_REDIS", "redis://127.0.0.1:6379/0")
POSTGRES_DSN = os.environ.get(
    "TOKENWARD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def missing_service(message: str) -> NoReturn:
    """Skip with ``message``, or fail when services are required (CI)."""
    if os.environ.get("TOKENWARD_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{message} and TOKENWARD_REQUIRE_SERVICES=1")
    pytest.skip(message)


def require_service(name: str, host: str, port: int) -> None:
    """Skip with a reason when a service is down, or fail when services are required."""
    if not _reachable(host, port):
        missing_service(f"{name} is not reachable at {host}:{port}")


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[rediscluster.LocalCluster]:
    """A three-primary Redis Cluster on loopback, for the whole session (started on first
    use; needs ``redis-server`` and ``redis-cli`` on PATH)."""
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        missing_service("redis-server and redis-cli are not on PATH (Redis Cluster tests)")
    cluster = rediscluster.start(server, cli, tmp_path_factory.mktemp("redis-cluster"))
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def redis_url() -> str:
    require_service("Redis", "127.0.0.1", 6379)
    return REDIS_URL


@pytest.fixture
def postgres_dsn() -> str:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    return POSTGRES_DSN
