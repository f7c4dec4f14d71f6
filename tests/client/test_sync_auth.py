"""TokenwardAuth (sync, threads) against the real auth server app.

The app runs its lifespan on an event loop in another thread and sync requests reach it
through ``BridgeTransport`` (``support.py``); everything else is as in the async tests.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.client.conftest import ACCESS_LIFETIME, SyncServer
from tests.client.support import TOKEN_PATH, Barrier, CallerClock, Gate
from tests.server.conftest import PASSWORD
from tokenward.client import LoginRequiredError, MemoryTokenStorage
from tokenward.testing import FrozenClock

THREADS = 20


def bearer_of(response: httpx.Response) -> str:
    return response.request.headers["Authorization"].removeprefix("Bearer ")


def in_threads(http: httpx.Client, count: int = THREADS) -> list[httpx.Response]:
    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(lambda _: http.get("/userinfo"), range(count)))


def test_first_request_logs_in_then_refreshes_past_expiry(sync_server: SyncServer) -> None:
    server = sync_server.server
    storage = MemoryTokenStorage()
    with sync_server.client(server.sync_auth(storage=storage)) as http:
        first = http.get("/userinfo")
        assert first.status_code == 200
        assert first.json()["username"] == "ada"
        assert bearer_of(http.get("/userinfo")) == bearer_of(first)
        server.clock.advance(ACCESS_LIFETIME + 1)
        renewed = http.get("/userinfo")
    assert renewed.status_code == 200
    assert bearer_of(renewed) != bearer_of(first)
    assert server.transport.paths == {TOKEN_PATH: 2, "/userinfo": 3}
    stored = storage.load()
    assert stored is not None
    assert stored.access_token == bearer_of(renewed)


def test_threads_with_an_expiring_token_refresh_once(sync_server: SyncServer) -> None:
    server = sync_server.server
    with sync_server.client(server.sync_auth()) as http:
        old = bearer_of(http.get("/userinfo"))
        server.clock.advance(ACCESS_LIFETIME - 5)
        server.transport.holds[TOKEN_PATH] = Gate(server.client_clock, THREADS)
        responses = in_threads(http)
    assert {r.status_code for r in responses} == {200}
    tokens = {bearer_of(r) for r in responses}
    assert len(tokens) == 1
    assert old not in tokens
    assert server.transport.token_requests == 2
    assert server.metrics.refreshes.get("success") == 1


def test_threads_on_first_use_log_in_once(sync_server: SyncServer) -> None:
    server = sync_server.server
    with sync_server.client(server.sync_auth()) as http:
        server.transport.holds[TOKEN_PATH] = Gate(server.client_clock, THREADS)
        responses = in_threads(http)
    assert {r.status_code for r in responses} == {200}
    assert server.transport.token_requests == 1


def test_threads_refused_together_refresh_once(sync_server: SyncServer) -> None:
    server = sync_server.server
    clock = CallerClock(FrozenClock(server.clock.now()))  # the client's clock stands still
    with sync_server.client(server.sync_auth(clock=clock)) as http:
        first = http.get("/userinfo")
        server.clock.advance(ACCESS_LIFETIME + 1)
        server.transport.holds["/userinfo"] = Barrier(THREADS, on_open=clock.forget_callers)
        server.transport.holds[TOKEN_PATH] = Gate(clock, THREADS)
        responses = in_threads(http)
    assert {r.status_code for r in responses} == {200}
    assert bearer_of(first) not in {bearer_of(r) for r in responses}
    assert server.metrics.refreshes.get("success") == 1
    assert server.transport.paths["/userinfo"] == 1 + 2 * THREADS


def test_a_revoked_session_without_credentials_raises_login_required(
    sync_server: SyncServer,
) -> None:
    server = sync_server.server
    with sync_server.client(None) as raw:
        form = {"grant_type": "password", "username": "ada", "password": PASSWORD}
        seed = raw.post(TOKEN_PATH, data={**form, "client_id": "web"}).json()["refresh_token"]
    auth = server.sync_auth(username=None, password=None, refresh_token=seed)
    with sync_server.client(auth) as http:
        assert http.get("/userinfo").status_code == 200
        assert http.post("/logout").status_code == 204
        with pytest.raises(LoginRequiredError):
            http.get("/userinfo")


def test_logout_revokes_the_session(sync_server: SyncServer) -> None:
    server = sync_server.server
    storage = MemoryTokenStorage()
    auth = server.sync_auth(storage=storage)
    with sync_server.client(auth) as http:
        first = http.get("/userinfo")
        auth.logout(http)
        assert storage.load() is None
        refused = http.get("/userinfo", auth=None, headers=first.request.headers)
        assert refused.status_code == 401
        assert http.get("/userinfo").status_code == 200
    assert server.metrics.logins.get("success") == 2
    assert server.transport.paths["/oauth/revoke"] == 1
