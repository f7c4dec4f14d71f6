"""Nothing secret in logs, errors or reprs: a full client story, every record checked.

The story runs every client path that logs (login, refresh, a refused token and its
retry, reuse detection and the new login, an outage, logout, refused logins, a missing
login) at DEBUG, for the client and the server alike, and then searches every captured
record (message, arguments, extra fields), every raised error and every ``repr`` for
the password, the client secret and every token that was issued.
"""

from __future__ import annotations

import logging

import pytest

from tests.client.conftest import ACCESS_LIFETIME, Server
from tests.server.conftest import CLIENT_SECRET, PASSWORD
from tokenward.client import (
    ClientError,
    LoginFailedError,
    LoginRequiredError,
    MemoryTokenStorage,
    StoredToken,
    TokenEndpointError,
)
from tokenward.testing import FrozenClock

WRONG_PASSWORD = "a wrong password typed by mistake"


class RecordingStorage(MemoryTokenStorage):
    """A memory storage that remembers every token it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.saved: list[StoredToken] = []

    def save(self, token: StoredToken) -> None:
        self.saved.append(token)
        super().save(token)


async def test_no_secret_reaches_a_log_record_an_error_or_a_repr(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    storage = RecordingStorage()
    errors: list[ClientError] = []
    thief_tokens: list[str] = []
    auth = server.auth(client_id="svc", client_secret=CLIENT_SECRET, storage=storage)
    async with server.client(auth) as http:
        await http.get("/userinfo")  # login
        server.clock.advance(ACCESS_LIFETIME)
        await http.get("/userinfo")  # refresh
        assert (await http.post("/logout")).status_code == 204
        await http.get("/userinfo")  # 401, refresh refused, login again, retry
        server.store.cut = True
        server.clock.advance(ACCESS_LIFETIME - 10)
        await http.get("/userinfo")  # the endpoint is down; the valid token stays
        server.store.cut = False
        await auth.logout(http)

    standing = server.auth(storage=storage, clock=FrozenClock(server.clock.now()))
    async with server.client(standing) as http:
        await http.get("/userinfo")
        server.clock.advance(ACCESS_LIFETIME + 1)
        await http.get("/userinfo")  # refused by the server (expired), renewed, retried
        held = storage.load()
        assert held is not None
        assert held.refresh_token is not None
        thief = (await server.raw_refresh(held.refresh_token)).json()
        thief_tokens += [thief["access_token"], thief["refresh_token"]]
        server.clock.advance(ACCESS_LIFETIME)
        await http.get("/userinfo")  # reuse detected, session revoked, login again

    for options in ({"password": WRONG_PASSWORD}, {"client_secret": WRONG_PASSWORD}):
        arguments = {"client_id": "svc", "client_secret": CLIENT_SECRET, **options}
        async with server.client(server.auth(**arguments)) as http:
            with pytest.raises(TokenEndpointError) as caught:
                await http.get("/userinfo")
            errors.append(caught.value)
    async with server.client(server.auth(username=None, password=None)) as http:
        with pytest.raises(LoginRequiredError) as required:
            await http.get("/userinfo")
        errors.append(required.value)
    assert isinstance(errors[0], LoginFailedError)

    secrets = {PASSWORD, CLIENT_SECRET, WRONG_PASSWORD, *thief_tokens}
    for token in storage.saved:
        secrets.add(token.access_token)
        if token.refresh_token is not None:
            secrets.add(token.refresh_token)
    assert len(storage.saved) >= 5  # the story issued tokens to check for
    exposed = [
        *(f"{r.getMessage()} {r.args!r} {r.__dict__!r}" for r in caplog.records),
        *(f"{e} {e!r} {e.__dict__!r}" for e in errors),
        *(repr(t) for t in storage.saved),
        repr(auth),
        repr(standing),
    ]
    leaks = sorted({s[:12] for s in secrets for text in exposed if s in text})
    assert leaks == [], f"secrets exposed (first 12 characters shown): {leaks}"

    client_events = {r.getMessage() for r in caplog.records if r.name == "tokenward.client"}
    assert {
        "logged in for client svc",
        "refreshed the access token for client svc",
        "refresh token refused (invalid_grant); logging in again",
        "access token refused (401 invalid_token); renewing it and retrying once",
        "logged out; the session was revoked",
        "login refused (HTTP 400, invalid_grant)",
    } <= client_events
    assert any("token endpoint unavailable (HTTP 503)" in e for e in client_events)
