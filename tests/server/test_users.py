"""Admin user endpoints (admin scope) and self-registration."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from tests.server.conftest import ADMIN_PASSWORD, PASSWORD, bearer, login, serve, state_of
from tokenward.server import Settings, create_app
from tokenward.stores import MemoryStore
from tokenward.testing import FrozenClock


async def admin_headers(http: httpx.AsyncClient) -> dict[str, str]:
    return bearer((await login(http, "root", ADMIN_PASSWORD))["access_token"])


NEW_USER: dict[str, Any] = {"username": "grace", "password": PASSWORD, "scopes": ["read"]}


async def test_an_admin_creates_a_user_who_can_log_in(http: httpx.AsyncClient) -> None:
    response = await http.post("/admin/users", json=NEW_USER, headers=await admin_headers(http))
    assert response.status_code == 201
    user = response.json()
    assert user["username"] == "grace"
    assert user["scopes"] == ["read"]
    assert user["admin"] is False
    assert user["disabled"] is False
    assert "password_hash" not in user
    assert (await login(http, "grace", PASSWORD))["scope"] == "read"


async def test_a_taken_username_is_409(http: httpx.AsyncClient) -> None:
    headers = await admin_headers(http)
    response = await http.post(
        "/admin/users", json={**NEW_USER, "username": "ada"}, headers=headers
    )
    assert response.status_code == 409
    assert response.json()["error"] == "user_exists"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({**NEW_USER, "password": "short"}, id="short-password"),
        pytest.param({**NEW_USER, "username": "no spaces"}, id="bad-username"),
        pytest.param({**NEW_USER, "scopes": "read"}, id="scopes-not-a-list"),
        pytest.param({**NEW_USER, "scopes": ['a"b']}, id="bad-scope-token"),
        pytest.param({**NEW_USER, "admin": "yes"}, id="admin-not-bool"),
        pytest.param({"username": "grace"}, id="no-password"),
        pytest.param({**NEW_USER, "password": 12345678}, id="password-not-a-string"),
    ],
)
async def test_invalid_users_are_400(http: httpx.AsyncClient, body: dict[str, Any]) -> None:
    response = await http.post("/admin/users", json=body, headers=await admin_headers(http))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert PASSWORD not in response.text


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        pytest.param(b"[1, 2]", "application/json", id="not-an-object"),
        pytest.param(b"{", "application/json", id="not-json"),
        pytest.param(b"username=grace", "application/x-www-form-urlencoded", id="a-form"),
    ],
)
async def test_admin_bodies_must_be_json_objects(
    http: httpx.AsyncClient, content: bytes, content_type: str
) -> None:
    headers = {**(await admin_headers(http)), "content-type": content_type}
    response = await http.post("/admin/users", content=content, headers=headers)
    assert response.status_code == 400


async def test_admin_endpoints_need_the_admin_scope(http: httpx.AsyncClient) -> None:
    user = bearer((await login(http))["access_token"])
    calls = [
        http.get("/admin/users", headers=user),
        http.post("/admin/users", json=NEW_USER, headers=user),
        http.post("/admin/users/ada/disable", headers=user),
        http.post("/admin/users/ada/password", json={"password": PASSWORD}, headers=user),
    ]
    for call in calls:
        response = await call
        assert response.status_code == 403
        challenge = response.headers["www-authenticate"]
        assert 'error="insufficient_scope"' in challenge
        assert 'scope="admin"' in challenge
    assert (await http.get("/admin/users")).status_code == 401


async def test_list_users(http: httpx.AsyncClient) -> None:
    response = await http.get("/admin/users", headers=await admin_headers(http))
    assert response.status_code == 200
    users = response.json()["users"]
    assert [u["username"] for u in users] == ["ada", "root"]
    assert [u["admin"] for u in users] == [False, True]


async def test_disabling_a_user_ends_their_sessions(
    http: httpx.AsyncClient, clock: FrozenClock
) -> None:
    pair = await login(http)
    clock.advance(1)
    response = await http.post("/admin/users/ada/disable", headers=await admin_headers(http))
    assert response.status_code == 200
    assert response.json() == {"username": "ada", "disabled": True, "revoked": 1}
    assert (await http.get("/userinfo", headers=bearer(pair["access_token"]))).status_code == 401
    form = {"grant_type": "password", "username": "ada", "password": PASSWORD, "client_id": "web"}
    assert (await http.post("/oauth/token", data=form)).json()["error"] == "invalid_grant"


async def test_setting_a_password_ends_sessions_and_changes_the_login(
    http: httpx.AsyncClient, clock: FrozenClock
) -> None:
    pair = await login(http)
    clock.advance(1)
    new = "a completely new password"
    response = await http.post(
        "/admin/users/ada/password", json={"password": new}, headers=await admin_headers(http)
    )
    assert response.status_code == 200
    assert response.json() == {"username": "ada", "revoked": 1}
    assert (await http.get("/userinfo", headers=bearer(pair["access_token"]))).status_code == 401
    assert (await login(http, "ada", new))["scope"] == "read write"
    weak = await http.post(
        "/admin/users/ada/password", json={"password": "short"}, headers=await admin_headers(http)
    )
    assert weak.status_code == 400


async def test_unknown_users_are_404(http: httpx.AsyncClient) -> None:
    headers = await admin_headers(http)
    assert (await http.post("/admin/users/nobody/disable", headers=headers)).status_code == 404
    response = await http.post(
        "/admin/users/nobody/password", json={"password": PASSWORD}, headers=headers
    )
    assert response.status_code == 404


# -- self-registration -----------------------------------------------------------------------


async def test_registration_is_404_unless_enabled(http: httpx.AsyncClient) -> None:
    response = await http.post("/register", json={"username": "eve", "password": PASSWORD})
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


@pytest.fixture
async def open_http(settings: Settings, clock: FrozenClock) -> Any:
    app = create_app(replace(settings, registration=True), store=MemoryStore(), clock=clock)
    async with serve(app) as http:
        yield http, app


async def test_registration_when_enabled(open_http: tuple[httpx.AsyncClient, Starlette]) -> None:
    http, app = open_http
    response = await http.post("/register", json={"username": "eve", "password": PASSWORD})
    assert response.status_code == 201
    assert response.json()["username"] == "eve"
    assert "scope" not in await login(http, "eve", PASSWORD)
    again = await http.post("/register", json={"username": "eve", "password": PASSWORD})
    assert again.status_code == 409
    bad = await http.post("/register", json={"username": "eve2", "password": "short"})
    assert bad.status_code == 400
    user = await state_of(app).users.get_user("eve")
    assert user is not None
    assert user.scopes == ()
    assert not user.admin
