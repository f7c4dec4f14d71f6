"""POST /oauth/revoke (RFC 7009) and POST /oauth/introspect (RFC 7662)."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette

from tests.server.conftest import basic, bearer, login, refresh, state_of
from tokenward.testing import FrozenClock


async def revoke(http: httpx.AsyncClient, token: str, **extra: str) -> httpx.Response:
    return await http.post("/oauth/revoke", data={"token": token, "client_id": "web", **extra})


async def introspect(http: httpx.AsyncClient, token: str, **extra: str) -> httpx.Response:
    return await http.post("/oauth/introspect", data={"token": token, **extra}, auth=basic())


@pytest.mark.parametrize("hint", [None, "refresh_token", "access_token"])
async def test_revoking_a_refresh_token_ends_its_session(
    http: httpx.AsyncClient, app: Starlette, hint: str | None
) -> None:
    pair = await login(http)
    extra = {"token_type_hint": hint} if hint else {}
    response = await revoke(http, pair["refresh_token"], **extra)
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["cache-control"] == "no-store"
    assert (await refresh(http, pair["refresh_token"])).json()["error"] == "invalid_grant"
    assert (await http.get("/userinfo", headers=bearer(pair["access_token"]))).status_code == 401
    assert state_of(app).metrics.revocations.get("session", "oauth_revoke") == 1


async def test_revoking_an_access_token_ends_its_session_too(http: httpx.AsyncClient) -> None:
    pair = await login(http)
    assert (await revoke(http, pair["access_token"])).status_code == 200
    assert (await http.get("/userinfo", headers=bearer(pair["access_token"]))).status_code == 401
    assert (await refresh(http, pair["refresh_token"])).json()["error"] == "invalid_grant"


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "x" * 5000])
async def test_unknown_tokens_are_answered_200(http: httpx.AsyncClient, token: str) -> None:
    assert (await revoke(http, token)).status_code == 200


async def test_revoking_twice_and_expired_tokens_are_200(
    http: httpx.AsyncClient, clock: FrozenClock
) -> None:
    pair = await login(http)
    assert (await revoke(http, pair["refresh_token"])).status_code == 200
    assert (await revoke(http, pair["access_token"])).status_code == 200
    other = await login(http)
    clock.advance(3600)
    assert (await revoke(http, other["access_token"])).status_code == 200


async def test_a_token_of_another_client_is_refused(http: httpx.AsyncClient) -> None:
    pair = await login(http)
    response = await http.post("/oauth/revoke", data={"token": pair["refresh_token"]}, auth=basic())
    assert response.status_code == 400
    assert response.json()["error"] == "unauthorized_client"
    assert (await refresh(http, pair["refresh_token"])).status_code == 200


async def test_revocation_requires_a_client_and_a_token(http: httpx.AsyncClient) -> None:
    no_client = await http.post("/oauth/revoke", data={"token": "x"})
    assert no_client.status_code == 401
    assert no_client.json()["error"] == "invalid_client"
    no_token = await http.post("/oauth/revoke", data={"client_id": "web"})
    assert no_token.status_code == 400
    assert no_token.json()["error"] == "invalid_request"


# -- introspection ---------------------------------------------------------------------------


async def test_an_active_access_token(http: httpx.AsyncClient) -> None:
    pair = await login(http)
    response = await introspect(http, pair["access_token"])
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["active"] is True
    assert body["token_use"] == "access"
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "read write"
    assert body["client_id"] == "web"
    assert body["username"] == "ada"
    assert body["sub"].startswith("u-")
    assert body["exp"] - body["iat"] == 900


async def test_an_active_refresh_token_and_a_superseded_one(http: httpx.AsyncClient) -> None:
    pair = await login(http)
    body = (await introspect(http, pair["refresh_token"], token_type_hint="refresh_token")).json()
    assert body["active"] is True
    assert body["token_use"] == "refresh"
    assert "token_type" not in body
    assert body["username"] == "ada"
    await refresh(http, pair["refresh_token"])
    assert (await introspect(http, pair["refresh_token"])).json() == {"active": False}


async def test_inactive_tokens_say_nothing_else(
    http: httpx.AsyncClient, clock: FrozenClock
) -> None:
    pair = await login(http)
    await revoke(http, pair["refresh_token"])
    assert (await introspect(http, pair["access_token"])).json() == {"active": False}
    assert (await introspect(http, "garbage")).json() == {"active": False}
    other = await login(http)
    clock.advance(901)
    assert (await introspect(http, other["access_token"])).json() == {"active": False}


async def test_introspection_is_for_confidential_clients_only(http: httpx.AsyncClient) -> None:
    pair = await login(http)
    public = await http.post(
        "/oauth/introspect", data={"token": pair["access_token"], "client_id": "web"}
    )
    assert public.status_code == 401
    assert public.json()["error"] == "invalid_client"
    nobody = await http.post("/oauth/introspect", data={"token": pair["access_token"]})
    assert nobody.status_code == 401
    missing = await http.post("/oauth/introspect", data={}, auth=basic())
    assert missing.json()["error"] == "invalid_request"


async def test_introspection_reads_the_store_for_sessions_revoked_elsewhere(
    http: httpx.AsyncClient, app: Starlette
) -> None:
    pair = await login(http)
    sid = (await introspect(http, pair["access_token"])).json()["sid"]
    # Revoked in the store only, as another instance would: this process's deny list
    # has not heard of it, introspection still answers inactive.
    tokens = state_of(app).tokens
    clock = tokens.clock
    await tokens.store.revoke_session(
        sid, now=clock.now(), reason="elsewhere", event_expires_at=clock.now() + 900
    )
    assert (await introspect(http, pair["access_token"])).json() == {"active": False}
