"""Service fixtures: a token service over every store backend, on a frozen clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.stores.conftest import BACKENDS, drop_backend, open_backend
from tokenward.service import TokenPolicy, TokenService
from tokenward.stores.base import SessionStore
from tokenward.testing import FrozenClock

ISSUER = "https://auth.test"
AUDIENCE = "api"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(1_800_000_000)


@pytest.fixture
def policy() -> TokenPolicy:
    return TokenPolicy(issuer=ISSUER, audience=AUDIENCE)


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SessionStore]:
    backend = await open_backend(request.param, tmp_path, request)
    try:
        yield backend
    finally:
        await drop_backend(backend)


@pytest.fixture
async def service(store: SessionStore, policy: TokenPolicy, clock: FrozenClock) -> TokenService:
    return await TokenService.create(store, policy, clock=clock)
