"""Integration fixtures: a real TokenService on a MemoryStore, on a frozen clock."""

from __future__ import annotations

import pytest

from tokenward.service import TokenPair, TokenPolicy, TokenService, Verifier
from tokenward.stores.memory import MemoryStore
from tokenward.testing import FrozenClock

ISSUER = "https://auth.test"
AUDIENCE = "api"
NOW = 1_800_000_000
REALM = "tokenward"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def policy() -> TokenPolicy:
    # A short absolute lifetime, so that sliding reaches the session's cap in a test.
    return TokenPolicy(
        issuer=ISSUER,
        audience=AUDIENCE,
        refresh_lifetime=1200.0,
        idle_timeout=1500.0,
        absolute_lifetime=1500.0,
    )


@pytest.fixture
async def service(store: MemoryStore, policy: TokenPolicy, clock: FrozenClock) -> TokenService:
    return await TokenService.create(store, policy, clock=clock)


@pytest.fixture
def verifier(service: TokenService) -> Verifier:
    # The service's own verifier: its key ring and its deny list (revocations apply).
    return service.verifier


@pytest.fixture
async def pair(service: TokenService) -> TokenPair:
    return await service.issue("ada", scope="read write")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def challenge(
    error: str | None = None, description: str | None = None, scope: str | None = None
) -> str:
    """The WWW-Authenticate value the integrations must send."""
    params = [f'realm="{REALM}"']
    if error is not None:
        params.append(f'error="{error}"')
    if description is not None:
        params.append(f'error_description="{description}"')
    if scope is not None:
        params.append(f'scope="{scope}"')
    return "Bearer " + ", ".join(params)


MISSING = challenge()
MALFORMED = challenge("invalid_request", "the Authorization header is malformed")
INVALID = challenge("invalid_token", "the access token is invalid")
EXPIRED = challenge("invalid_token", "the access token expired")
REVOKED = challenge("invalid_token", "the access token was revoked")


def insufficient(scope: str) -> str:
    return challenge("insufficient_scope", "the access token lacks a required scope", scope)
