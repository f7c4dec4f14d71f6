"""Bearer-authenticated endpoints: /userinfo, /sessions, /logout (RFC 6750 errors)."""

from __future__ import annotations

from dataclasses import replace

import httpx
import pytest
from starlette.applications import Starlette

from tests.server.conftest import (
    ADMIN_PASSWORD,
    PASSWORD,
    bearer,
    login,
    refresh,
    serve,
    state_of,
)
from tokenward.server import Settings, create_app
from tokenward.stores import MemoryStore
from tokenward.testing import FrozenClock


async def test_userinfo(http: httpx.AsyncClient) -> None:
    pair = await login(http)
    response = await http.get("/userinfo", headers=bearer(pair["access_token"]))
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["username"] == "ada"
    assert body["scopes"] == ["read", "write"]
    assert body["sub"].startswith("u-")


async def test_no_credentials_get_a_bare_challenge(http: httpx.AsyncClient) -> None:
    # RFC 6750 sec. 3.1: no error code when the request carries no authentication.
    for headers in ({}, {"Authorization": "Basic dXNlcjpwYXNz"}):
        response = await http.get("/userinfo", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == 'Bearer realm="tokenward"'


@pytest.mark.parametrize("value", ["Bearer", "Bearer ", "Bearer a b", "Bearer {token}"])
async def test_malformed_bearer_headers_are_invalid_request(
    http: httpx.AsyncClient, value: str
) -> None:
    response = await http.get("/userinfo", headers={"Authorization": value})
    assert response.status_code == 400
    assert 'error="invalid_request"' in response.headers["www-authenticate"]


async def test_two_authorization_headers_are_invalid_request(http: httpx.AsyncClient) -> None:
    pair = await login(http)
    headers = [("Authorization", f"Bearer {pair['access_token']}")] * 2
    response = await http.get("/userinfo", headers=headers)
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("advance", "description", "code"),
    [
        pytest.param(0, "the access token is invalid", "bad_signature", id="tampered"),
        pytest.param(901, "the access token expired", "token_expired", id="expired"),
    ],
)
async def test_bad_tokens_are_invalid_token(
    http: httpx.AsyncClient,
    app: Starlette,
    clock: FrozenClock,
    *,
    advance: int,
    description: str,
    code: str,
) -> None:
    token = (await login(http))["access_token"]
    if not advance:
        head, body, sig = token.split(".")
        token = ".".join((head, body, ("A" if sig[0] != "A" else "B") + sig[1:]))
    clock.advance(advance)
    response = await http.get("/userinfo", headers=bearer(token))
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert 'error="invalid_token"' in challenge
    assert f'error_description="{description}"' in challenge
    assert response.json()["error"] == "invalid_token"
    assert state_of(app).metrics.verification_failures.get(code) == 1


async def test_a_refresh_token_is_not_a_bearer_token(http: httpx.AsyncClient) -> None:
    pair = await login(http)
    response = await http.get("/userinfo", headers=bearer(pair["refresh_token"]))
    assert response.status_code == 401


async def test_sessions_lists_devices_and_marks_the_current_one(
    http: httpx.AsyncClient, clock: FrozenClock
) -> None:
    phone = await login(http, headers={"User-Agent": "phone/1.0"})
    clock.advance(30)
    laptop = await login(http, headers={"User-Agent": "laptop/2.0"})
    clock.advance(30)
    await refresh(http, phone["refresh_token"])
    response = await http.get("/sessions", headers=bearer(laptop["access_token"]))
    assert response.status_code == 200
    sessions = response.json()["sessions"]
    assert [s["user_agent"] for s in sessions] == ["phone/1.0", "laptop/2.0"]
    assert [s["current"] for s in sessions] == [False, True]
    assert sessions[0]["ip"] == "127.0.0.1"
    assert sessions[0]["client_id"] == "web"
    assert sessions[0]["created_at"] == 1_800_000_000
    assert sessions[0]["last_used_at"] == 1_800_000_060
    assert sessions[1]["last_used_at"] == 1_800_000_030


async def test_delete_one_of_my_sessions(http: httpx.AsyncClient) -> None:
    phone, laptop = await login(http), await login(http)
    listed = (await http.get("/sessions", headers=bearer(laptop["access_token"]))).json()
    phone_sid = next(s["sid"] for s in listed["sessions"] if not s["current"])
    deleted = await http.delete(f"/sessions/{phone_sid}", headers=bearer(laptop["access_token"]))
    assert deleted.status_code == 204
    assert (await http.get("/userinfo", headers=bearer(phone["access_token"]))).status_code == 401
    assert (await http.get("/userinfo", headers=bearer(laptop["access_token"]))).status_code == 200
    again = await http.delete(f"/sessions/{phone_sid}", headers=bearer(laptop["access_token"]))
    assert again.status_code == 404


async def test_someone_elses_session_is_not_found(http: httpx.AsyncClient) -> None:
    mine = await login(http)
    theirs = await login(http, "root", ADMIN_PASSWORD)
    their_sid = (await http.get("/sessions", headers=bearer(theirs["access_token"]))).json()
    sid = their_sid["sessions"][0]["sid"]
    for target in (sid, "made-up", "x" * 500):
        response = await http.delete(f"/sessions/{target}", headers=bearer(mine["access_token"]))
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"
    assert (await http.get("/userinfo", headers=bearer(theirs["access_token"]))).status_code == 200


async def test_logout_ends_the_current_session_only(http: httpx.AsyncClient) -> None:
    one, two = await login(http), await login(http)
    response = await http.post("/logout", headers=bearer(one["access_token"]))
    assert response.status_code == 204
    assert (await http.get("/userinfo", headers=bearer(one["access_token"]))).status_code == 401
    assert (await refresh(http, one["refresh_token"])).status_code == 400
    assert (await http.get("/userinfo", headers=bearer(two["access_token"]))).status_code == 200


async def test_logout_all_ends_every_session(http: httpx.AsyncClient, clock: FrozenClock) -> None:
    one, two = await login(http), await login(http)
    clock.advance(1)  # user-wide revocation denies tokens issued in earlier seconds
    response = await http.post("/logout/all", headers=bearer(two["access_token"]))
    assert response.status_code == 200
    assert response.json() == {"revoked": 2}
    for pair in (one, two):
        assert (
            await http.get("/userinfo", headers=bearer(pair["access_token"]))
        ).status_code == 401
        assert (await refresh(http, pair["refresh_token"])).status_code == 400


# -- the client address behind proxies ------------------------------------------------------


async def _ip_seen(settings: Settings, peer: str, forwarded: str | None) -> str | None:
    app = create_app(settings, store=MemoryStore(), clock=FrozenClock())
    async with serve(app, client=(peer, 40000)) as http:
        await state_of(app).users.create_user("ada", PASSWORD)
        headers = {"X-Forwarded-For": forwarded} if forwarded else {}
        pair = await login(http, headers=headers)
        sessions = (await http.get("/sessions", headers=bearer(pair["access_token"]))).json()
        ip: str | None = sessions["sessions"][0]["ip"]
        return ip


@pytest.mark.parametrize(
    ("peer", "forwarded", "seen"),
    [
        pytest.param("203.0.113.9", "198.51.100.1", "203.0.113.9", id="untrusted-peer"),
        pytest.param("10.0.0.2", "198.51.100.1", "198.51.100.1", id="trusted-peer"),
        pytest.param("10.0.0.2", "1.1.1.1, 198.51.100.1, 10.0.0.3", "198.51.100.1", id="chain"),
        pytest.param("10.0.0.2", "198.51.100.1, junk", "10.0.0.2", id="junk-stops-the-walk"),
        pytest.param("10.0.0.2", None, "10.0.0.2", id="no-header"),
        pytest.param("10.0.0.2", "10.0.0.7", "10.0.0.7", id="all-trusted"),
    ],
)
async def test_x_forwarded_for_is_believed_only_from_trusted_proxies(
    settings: Settings, peer: str, forwarded: str | None, seen: str
) -> None:
    trusting = replace(settings, trusted_proxies=("10.0.0.0/8",))
    assert await _ip_seen(trusting, peer, forwarded) == seen


async def test_without_trusted_proxies_the_header_is_ignored(settings: Settings) -> None:
    assert await _ip_seen(settings, "10.0.0.2", "198.51.100.1") == "10.0.0.2"
