"""POST /oauth/token with grant_type=refresh_token: rotation, grace, reuse, scope narrowing."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette

from tests.server.conftest import CLIENT_SECRET, PASSWORD, basic, bearer, login, refresh, state_of
from tokenward.jose import jwt
from tokenward.testing import FrozenClock


async def test_refresh_rotates_the_pair(http: httpx.AsyncClient, clock: FrozenClock) -> None:
    first = await login(http)
    clock.advance(60)
    response = await refresh(http, first["refresh_token"])
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    second = response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert second["scope"] == "read write"
    assert (await http.get("/userinfo", headers=bearer(second["access_token"]))).status_code == 200


async def test_a_replay_within_the_grace_window_gets_the_same_pair(
    http: httpx.AsyncClient, clock: FrozenClock
) -> None:
    first = await login(http)
    second = (await refresh(http, first["refresh_token"])).json()
    clock.advance(5)
    again = await refresh(http, first["refresh_token"])
    assert again.status_code == 200
    assert again.json() == second


async def test_reuse_after_the_grace_window_revokes_the_session(
    http: httpx.AsyncClient, clock: FrozenClock, app: Starlette
) -> None:
    first = await login(http)
    second = (await refresh(http, first["refresh_token"])).json()
    clock.advance(11)
    reused = await refresh(http, first["refresh_token"])
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    # The whole session is gone: the legitimate successor and its access token too.
    assert (await refresh(http, second["refresh_token"])).json()["error"] == "invalid_grant"
    denied = await http.get("/userinfo", headers=bearer(second["access_token"]))
    assert denied.status_code == 401
    assert state_of(app).metrics.reuse_detected.get() == 1


async def test_a_narrower_scope_applies_to_the_new_access_token_only(
    http: httpx.AsyncClient,
) -> None:
    first = await login(http)
    narrowed = await refresh(http, first["refresh_token"], scope="read")
    assert narrowed.status_code == 200
    body = narrowed.json()
    assert body["scope"] == "read"
    info = (await http.get("/userinfo", headers=bearer(body["access_token"]))).json()
    assert info["scopes"] == ["read"]
    assert info["username"] == "ada"
    # The refresh token keeps the original grant (RFC 6749 sec. 6).
    full = (await refresh(http, body["refresh_token"])).json()
    assert full["scope"] == "read write"


async def test_a_wider_scope_is_refused_and_the_token_stays_usable(
    http: httpx.AsyncClient,
) -> None:
    first = await login(http, scope="read")
    wider = await refresh(http, first["refresh_token"], scope="read write")
    assert wider.status_code == 400
    assert wider.json()["error"] == "invalid_scope"
    assert (await refresh(http, first["refresh_token"])).status_code == 200


async def test_a_refresh_token_of_another_client_is_invalid_grant(
    http: httpx.AsyncClient,
) -> None:
    first = await login(http)
    form = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    response = await http.post("/oauth/token", data=form, auth=basic("svc", CLIENT_SECRET))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    # Refused before the store: the rightful client can still use it.
    assert (await refresh(http, first["refresh_token"])).status_code == 200


async def test_an_access_token_is_not_a_refresh_token(http: httpx.AsyncClient) -> None:
    first = await login(http)
    response = await refresh(http, first["access_token"])
    assert response.json()["error"] == "invalid_grant"


async def test_garbage_and_forged_refresh_tokens_are_invalid_grant(
    http: httpx.AsyncClient, app: Starlette
) -> None:
    first = await login(http)
    header, payload, signature = first["refresh_token"].split(".")
    flipped = "B" if signature[0] == "A" else "A"
    forged = ".".join((header, payload, flipped + signature[1:]))
    for token in ("garbage", "a.b.c", forged):
        response = await refresh(http, token)
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_grant"
    assert state_of(app).metrics.refreshes.get("invalid") == 3


async def test_an_expired_session_cannot_refresh(
    http: httpx.AsyncClient, clock: FrozenClock
) -> None:
    first = await login(http)
    clock.advance(15 * 86400)  # past the 14-day idle timeout and refresh token lifetime
    assert (await refresh(http, first["refresh_token"])).json()["error"] == "invalid_grant"


async def test_tokens_carry_the_username_for_userinfo(http: httpx.AsyncClient) -> None:
    first = await login(http)
    claims = jwt.inspect_unverified(first["access_token"]).claims
    assert claims["preferred_username"] == "ada"
    assert claims["client_id"] == "web"
    refreshed = (await refresh(http, first["refresh_token"])).json()
    assert jwt.inspect_unverified(refreshed["access_token"]).claims["preferred_username"] == "ada"


async def test_a_password_change_ends_refresh(
    http: httpx.AsyncClient, app: Starlette, clock: FrozenClock
) -> None:
    first = await login(http)
    clock.advance(1)
    await state_of(app).users.set_password("ada", PASSWORD + "!")
    assert (await refresh(http, first["refresh_token"])).json()["error"] == "invalid_grant"
