"""Shared fixtures: real services (Redis, PostgreSQL) with a visible skip or a hard failure."""

from __future__ import annotations

import os
import socket

import pytest

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


def require_service(name: str, host: str, port: int) -> None:
    """Skip with a reason when a service is down, or fail when services are required."""
    if _reachable(host, port):
        return
    message = f"{name} is not reachable at {host}:{port}"
    if os.environ.get("TOKENWARD_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{message} and TOKENWARD_REQUIRE_SERVICES=1")
    pytest.skip(message)


@pytest.fixture
def redis_url() -> str:
    require_service("Redis", "127.0.0.1", 6379)
    return REDIS_URL


@pytest.fixture
def postgres_dsn() -> str:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    return POSTGRES_DSN
