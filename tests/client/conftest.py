"""Client fixtures: the real auth server app (MemoryStore, FrozenClock, fast argon2).

The server's own test settings are reused (``tests/server/conftest.py``): a public
client ``web`` and a confidential client ``svc``; users ``ada`` (scopes read, write)
and ``root`` (admin). The app's lifespan runs; requests reach it through the real
``httpx.ASGITransport``, wrapped only to count them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from tests.client.support import (
    BridgeTransport,
    CallerClock,
    CountingTransport,
    CuttableMemoryStore,
    LoopThread,
)
from tests.server.conftest import ADMIN_PASSWORD, ISSUER, PASSWORD, make_settings, state_of
from tokenward.client import AsyncTokenwardAuth, TokenwardAuth
from tokenward.server import Settings, create_app
from tokenward.testing import FrozenClock

TOKEN_URL = f"{ISSUER}/oauth/token"
START = 1_800_000_000.0
ACCESS_LIFETIME = 900.0  # the server's default access_lifetime


@dataclass
class Server:
    """The running app, its counted transport and the clocks."""

    app: Starlette
    transport: CountingTransport
    clock: FrozenClock
    client_clock: CallerClock
    store: CuttableMemoryStore

    @property
    def metrics(self) -> Any:
        return state_of(self.app).metrics

    def auth(self, **overrides: Any) -> AsyncTokenwardAuth:
        """An async auth for user ada on the public client, on the server's clock."""
        options: dict[str, Any] = {
            "client_id": "web",
            "username": "ada",
            "password": PASSWORD,
            "clock": self.client_clock,
        }
        options.update(overrides)
        return AsyncTokenwardAuth(TOKEN_URL, **options)

    def sync_auth(self, **overrides: Any) -> TokenwardAuth:
        """The sync flavour of :meth:`auth`."""
        options: dict[str, Any] = {
            "client_id": "web",
            "username": "ada",
            "password": PASSWORD,
            "clock": self.client_clock,
        }
        options.update(overrides)
        return TokenwardAuth(TOKEN_URL, **options)

    def client(self, auth: httpx.Auth | None) -> httpx.AsyncClient:
        """An AsyncClient over the counted transport (the caller closes it)."""
        return httpx.AsyncClient(transport=self.transport, base_url=ISSUER, auth=auth)

    async def raw_login(self, **extra: str) -> dict[str, Any]:
        """A password grant sent by hand (no auth object): the JSON answer."""
        form = {"grant_type": "password", "username": "ada", "password": PASSWORD}
        form.update({"client_id": "web", **extra})
        async with self.client(None) as http:
            response = await http.post("/oauth/token", data=form)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def raw_refresh(self, refresh_token: str) -> httpx.Response:
        """A refresh_token grant sent by hand, as a thief holding the token would."""
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": "web"}
        async with self.client(None) as http:
            return await http.post("/oauth/token", data=form)


@pytest.fixture
def settings() -> Settings:
    return make_settings()


def make_server(settings: Settings) -> Server:
    clock = FrozenClock(START)
    store = CuttableMemoryStore()
    app = create_app(settings, store=store, clock=clock)
    asgi = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    return Server(app, CountingTransport(asgi), clock, CallerClock(clock), store)


async def add_users(server: Server) -> None:
    users = state_of(server.app).users
    await users.create_user("ada", PASSWORD, scopes=["read", "write"])
    await users.create_user("root", ADMIN_PASSWORD, admin=True)


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[Server]:
    """The app with its lifespan running, for async clients."""
    running = make_server(settings)
    async with running.app.router.lifespan_context(running.app):
        await add_users(running)
        yield running


@dataclass
class SyncServer:
    """The app running on a loop thread, and a factory of sync clients to it."""

    server: Server
    loop: LoopThread

    def client(self, auth: httpx.Auth | None) -> httpx.Client:
        transport = BridgeTransport(self.loop, self.server.transport)
        return httpx.Client(transport=transport, base_url=ISSUER, auth=auth)


@pytest.fixture
def sync_server(settings: Settings) -> Iterator[SyncServer]:
    """The app with its lifespan running on another thread's loop, for sync clients."""
    running = make_server(settings)
    with LoopThread() as loop:
        lifespan = running.app.router.lifespan_context(running.app)
        loop.run(lifespan.__aenter__())
        try:
            loop.run(add_users(running))
            yield SyncServer(running, loop)
        finally:
            loop.run(lifespan.__aexit__(None, None, None))
