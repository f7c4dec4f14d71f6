"""Server fixtures: the real ASGI app over a MemoryStore on a frozen clock, and helpers.

Requests go through httpx's ASGI transport to the real application; its lifespan runs
(``app.router.lifespan_context``), so startup and shutdown are the production code.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from tokenward.server import ClientConfig, Settings, create_app
from tokenward.server._state import Runtime
from tokenward.stores import MemoryStore
from tokenward.testing import FrozenClock

ISSUER = "https://auth.test"
CLIENT_SECRET = "s3cret-for-the-service-client"
PASSWORD = "correct horse battery staple"
ADMIN_PASSWORD = "admin password of some length"

FAST_ARGON2: dict[str, Any] = {
    "argon2_time_cost": 1,
    "argon2_memory_cost": 8,
    "argon2_parallelism": 1,
}


def make_settings(**overrides: Any) -> Settings:
    """Test settings: fast argon2, a public client ``web`` and a confidential ``svc``."""
    base = Settings(
        issuer=ISSUER,
        clients=(
            ClientConfig("web"),
            ClientConfig("svc", hashlib.sha256(CLIENT_SECRET.encode()).hexdigest()),
        ),
        **FAST_ARGON2,
    )
    return replace(base, **overrides)


@asynccontextmanager
async def serve(
    app: Starlette, *, client: tuple[str, int] = ("127.0.0.1", 50000)
) -> AsyncIterator[httpx.AsyncClient]:
    """Run ``app``'s lifespan and yield an httpx client talking to it in-process."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
            yield http


def state_of(app: Starlette) -> Runtime:
    """The app's runtime state (services, metrics)."""
    runtime: Runtime = app.state.tokenward
    return runtime


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(1_800_000_000)


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def settings() -> Settings:
    return make_settings()


@pytest.fixture
def app(settings: Settings, store: MemoryStore, clock: FrozenClock) -> Starlette:
    return create_app(settings, store=store, clock=clock)


@pytest.fixture
async def http(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(app) as client:
        await state_of(app).users.create_user("ada", PASSWORD, scopes=["read", "write"])
        await state_of(app).users.create_user("root", ADMIN_PASSWORD, admin=True)
        yield client


async def login(
    http: httpx.AsyncClient,
    username: str = "ada",
    password: str = PASSWORD,
    *,
    client_id: str = "web",
    scope: str | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A successful password grant's JSON body."""
    form = {"grant_type": "password", "username": username, "password": password}
    form["client_id"] = client_id
    if scope is not None:
        form["scope"] = scope
    response = await http.post("/oauth/token", data=form, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def bearer(token: str) -> dict[str, str]:
    """An Authorization header for an access token."""
    return {"Authorization": f"Bearer {token}"}


def basic(client_id: str = "svc", secret: str = CLIENT_SECRET) -> httpx.BasicAuth:
    """HTTP Basic credentials of a confidential client."""
    return httpx.BasicAuth(client_id, secret)


async def refresh(http: httpx.AsyncClient, refresh_token: str, **extra: str) -> httpx.Response:
    """POST a refresh_token grant for the public client ``web``."""
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": "web"}
    form.update(extra)
    return await http.post("/oauth/token", data=form)
