"""Fixtures for the bench tests: a backend spec per store, and the small workload.

Redis and PostgreSQL come from the ``redis_url`` and ``postgres_dsn`` fixtures of
``tests/conftest.py``, with their rules: skipped when the server is not reachable, a
failure when ``TOKENWARD_REQUIRE_SERVICES=1`` (CI).
"""

from __future__ import annotations

import pytest

from tokenward.bench import BackendSpec, Workload

SMALL = Workload(users=20, requests=200, minutes=30, access_minutes=15)
"""20 users x 200 requests over 30 simulated minutes with 15-minute access tokens."""


def _spec(request: pytest.FixtureRequest, name: str) -> BackendSpec:
    if name == "redis":
        return BackendSpec("redis", request.getfixturevalue("redis_url"))
    if name == "postgres":
        return BackendSpec("postgres", request.getfixturevalue("postgres_dsn"))
    return BackendSpec(name)


@pytest.fixture(params=["sqlite", "memory", "redis", "postgres"])
def backend(request: pytest.FixtureRequest) -> BackendSpec:
    """Each backend."""
    return _spec(request, request.param)


@pytest.fixture(params=["sqlite", "redis", "postgres"])
def stoppable(request: pytest.FixtureRequest) -> BackendSpec:
    """The backends the outage case can stop (not memory)."""
    return _spec(request, request.param)
