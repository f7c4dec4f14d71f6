"""Cookie mode: the refresh token in an HttpOnly cookie, CSRF checks on cookie requests."""

from __future__ import annotations

from dataclasses import replace

import httpx
import pytest
from starlette.applications import Starlette

from tests.server.conftest import PASSWORD, basic, bearer, serve, state_of
from tokenward.server import Settings, create_app
from tokenward.server._cookies import csrf_token
from tokenward.stores import MemoryStore
from tokenward.testing import FrozenClock

LOGIN = {"username": "ada", "password": PASSWORD, "client_id": "web"}
CSRF_ANY = {"X-CSRF-Token": "1"}


def set_cookies(response: httpx.Response) -> dict[str, str]:
    """Set-Cookie headers by cookie name."""
    return {h.split("=", 1)[0]: h for h in response.headers.get_list("set-cookie")}


async def cookie_login(http: httpx.AsyncClient) -> httpx.Response:
    response = await http.post("/cookie/login", data=LOGIN, headers=CSRF_ANY)
    assert response.status_code == 200, response.text
    return response


def csrf(http: httpx.AsyncClient) -> dict[str, str]:
    """The double-submit header, read from the cookie as a browser app would."""
    return {"X-CSRF-Token": http.cookies["tw_csrf"]}


async def test_login_puts_the_refresh_token_in_an_httponly_cookie(
    http: httpx.AsyncClient,
) -> None:
    response = await cookie_login(http)
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope", "csrf_token"}
    assert response.headers["cache-control"] == "no-store"
    cookies = set_cookies(response)
    refresh = cookies["tw_refresh"].lower()
    for attribute in ("httponly", "secure", "samesite=strict", "path=/cookie", "max-age=1209600"):
        assert attribute in refresh
    csrf_cookie = cookies["tw_csrf"].lower()
    assert "httponly" not in csrf_cookie
    assert "secure" in csrf_cookie
    assert "path=/;" in csrf_cookie or csrf_cookie.endswith("path=/")
    assert http.cookies["tw_csrf"] == body["csrf_token"]
    assert body["csrf_token"] == csrf_token(http.cookies["tw_refresh"])
    assert (await http.get("/userinfo", headers=bearer(body["access_token"]))).status_code == 200


async def test_refresh_rotates_the_cookie_and_the_csrf_token(http: httpx.AsyncClient) -> None:
    first = (await cookie_login(http)).json()
    old_cookie = http.cookies["tw_refresh"]
    response = await http.post("/cookie/refresh", headers=csrf(http))
    assert response.status_code == 200
    body = response.json()
    assert body["access_token"] != first["access_token"]
    assert http.cookies["tw_refresh"] != old_cookie
    assert body["csrf_token"] == http.cookies["tw_csrf"] != first["csrf_token"]
    assert (await http.post("/cookie/refresh", headers=csrf(http))).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-header"),
        pytest.param({"X-CSRF-Token": "guess"}, id="wrong-token"),
        pytest.param({"Origin": "https://evil.example"}, id="foreign-origin"),
        pytest.param({"Origin": "null"}, id="null-origin"),
        pytest.param({"Sec-Fetch-Site": "cross-site"}, id="cross-site-fetch"),
    ],
)
async def test_cookie_requests_need_the_csrf_checks(
    http: httpx.AsyncClient, app: Starlette, headers: dict[str, str]
) -> None:
    await cookie_login(http)
    before = http.cookies["tw_refresh"]
    good = csrf(http)
    # The CSRF header cases replace the genuine header; the origin cases add to it.
    sent = headers if "X-CSRF-Token" in headers or not headers else {**good, **headers}
    for path in ("/cookie/refresh", "/cookie/logout"):
        response = await http.post(path, headers=sent)
        assert response.status_code == 403
        assert response.json()["error"] == "invalid_request"
        assert response.json()["error_description"] == "the CSRF check failed"
    assert http.cookies["tw_refresh"] == before
    assert state_of(app).metrics.csrf_failures.get() == 2
    # Nothing was changed: the genuine request still works.
    assert (await http.post("/cookie/refresh", headers=good)).status_code == 200


@pytest.mark.parametrize(
    "origin", ["https://auth.test", "http://auth.test"], ids=["issuer", "same-host-http"]
)
async def test_same_origin_requests_pass(http: httpx.AsyncClient, origin: str) -> None:
    await cookie_login(http)
    response = await http.post("/cookie/refresh", headers={**csrf(http), "Origin": origin})
    assert response.status_code == 200


async def test_login_needs_the_custom_header_and_a_matching_origin(
    http: httpx.AsyncClient,
) -> None:
    assert (await http.post("/cookie/login", data=LOGIN)).status_code == 403
    foreign = {**CSRF_ANY, "Origin": "https://evil.example"}
    assert (await http.post("/cookie/login", data=LOGIN, headers=foreign)).status_code == 403
    wrong = {**LOGIN, "password": "wrong password"}
    failed = await http.post("/cookie/login", data=wrong, headers=CSRF_ANY)
    assert failed.status_code == 400
    assert "set-cookie" not in failed.headers


async def test_no_cookie_is_invalid_grant(http: httpx.AsyncClient) -> None:
    response = await http.post("/cookie/refresh", headers=CSRF_ANY)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_logout_revokes_the_session_and_clears_the_cookies(
    http: httpx.AsyncClient,
) -> None:
    body = (await cookie_login(http)).json()
    response = await http.post("/cookie/logout", headers=csrf(http))
    assert response.status_code == 204
    cleared = set_cookies(response)
    assert 'tw_refresh=""' in cleared["tw_refresh"]
    assert "max-age=0" in cleared["tw_refresh"].lower()
    assert "tw_refresh" not in http.cookies
    assert (await http.get("/userinfo", headers=bearer(body["access_token"]))).status_code == 401


async def test_a_refused_refresh_clears_the_cookies(
    http: httpx.AsyncClient, app: Starlette, clock: FrozenClock
) -> None:
    body = (await cookie_login(http)).json()
    sid = (await http.get("/sessions", headers=bearer(body["access_token"]))).json()
    await state_of(app).tokens.revoke_session(sid["sessions"][0]["sid"])
    response = await http.post("/cookie/refresh", headers=csrf(http))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert "tw_refresh" not in http.cookies


async def test_cookie_path_prefix_and_insecure_development_cookies(
    settings: Settings, clock: FrozenClock
) -> None:
    dev = replace(settings, cookie_secure=False, cookie_path_prefix="/auth/")
    app = create_app(dev, store=MemoryStore(), clock=clock)
    async with serve(app) as http:
        await state_of(app).users.create_user("ada", PASSWORD)
        response = await http.post("/cookie/login", data=LOGIN, headers=CSRF_ANY)
        refresh = set_cookies(response)["tw_refresh"].lower()
        assert "path=/auth/cookie" in refresh
        assert "secure" not in refresh
        assert "httponly" in refresh


async def test_cookie_mode_is_for_public_clients(http: httpx.AsyncClient) -> None:
    form = {"username": "ada", "password": PASSWORD}
    response = await http.post("/cookie/login", data=form, headers=CSRF_ANY, auth=basic())
    assert response.status_code == 400
    assert response.json()["error"] == "unauthorized_client"
    assert "set-cookie" not in response.headers


async def test_a_confidential_clients_refresh_token_is_refused_in_the_cookie(
    http: httpx.AsyncClient,
) -> None:
    # /oauth/token needs the client's secret to rotate or revoke this token; the cookie
    # endpoints authenticate no client, so they must not take it.
    form = {"grant_type": "password", "username": "ada", "password": PASSWORD}
    token = (await http.post("/oauth/token", data=form, auth=basic())).json()["refresh_token"]
    for path in ("/cookie/refresh", "/cookie/logout"):
        http.cookies.set("tw_refresh", token, domain="auth.test", path="/cookie")
        response = await http.post(path, headers={"X-CSRF-Token": csrf_token(token)})
        assert response.status_code == 400, path
        assert response.json()["error"] == "invalid_grant"
        assert "tw_refresh" not in http.cookies
    # Neither rotated nor revoked: the client itself can still refresh it.
    form = {"grant_type": "refresh_token", "refresh_token": token}
    assert (await http.post("/oauth/token", data=form, auth=basic())).status_code == 200
