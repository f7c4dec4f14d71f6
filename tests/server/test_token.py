"""POST /oauth/token: the password grant, client authentication and request parsing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from tests.server.conftest import (
    ADMIN_PASSWORD,
    CLIENT_SECRET,
    PASSWORD,
    basic,
    bearer,
    login,
    refresh,
    state_of,
)
from tokenward.testing import FrozenClock

PASSWORD_FORM = {"grant_type": "password", "username": "ada", "password": PASSWORD}


async def test_password_grant_answers_rfc6749_section_5_1(http: httpx.AsyncClient) -> None:
    form = {"grant_type": "password", "username": "ada", "password": PASSWORD, "client_id": "web"}
    response = await http.post("/oauth/token", data=form)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token", "scope"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert body["scope"] == "read write"


async def test_scope_picks_among_the_users_scopes(http: httpx.AsyncClient) -> None:
    assert (await login(http, scope="read"))["scope"] == "read"
    # Scopes the user does not hold are left out, and the response says what was granted.
    assert (await login(http, scope="read admin delete"))["scope"] == "read"


async def test_admins_get_the_admin_scope(http: httpx.AsyncClient) -> None:
    assert (await login(http, "root", ADMIN_PASSWORD))["scope"] == "admin"


async def test_asking_only_for_scopes_the_user_lacks_is_invalid_scope(
    http: httpx.AsyncClient,
) -> None:
    # Granting nothing would need an empty "scope", which RFC 6749 sec. 3.3 cannot express.
    for username, password in (("ada", PASSWORD), ("root", ADMIN_PASSWORD)):
        form = {"grant_type": "password", "username": username, "password": password}
        response = await http.post(
            "/oauth/token", data={**form, "client_id": "web", "scope": "other"}
        )
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_scope"
    # The password is checked first: a wrong one is still invalid_grant.
    form = {"grant_type": "password", "username": "ada", "password": "wrong password"}
    response = await http.post("/oauth/token", data={**form, "client_id": "web", "scope": "other"})
    assert response.json()["error"] == "invalid_grant"


async def test_a_user_without_scopes_gets_no_scope_member(
    http: httpx.AsyncClient, app: Starlette
) -> None:
    await state_of(app).users.create_user("bob", PASSWORD)
    body = await login(http, "bob")
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
    rotated = await refresh(http, body["refresh_token"])
    assert rotated.status_code == 200
    assert "scope" not in rotated.json()
    introspected = await http.post(
        "/oauth/introspect", data={"token": body["access_token"]}, auth=basic()
    )
    assert introspected.json()["active"] is True
    assert "scope" not in introspected.json()
    assert (await http.get("/userinfo", headers=bearer(body["access_token"]))).status_code == 200


async def test_wrong_password_and_unknown_user_get_the_same_answer(
    http: httpx.AsyncClient,
) -> None:
    wrong = {"grant_type": "password", "username": "ada", "password": "not it at all"}
    unknown = {"grant_type": "password", "username": "nobody", "password": "not it at all"}
    answers = []
    for form in (wrong, unknown):
        response = await http.post("/oauth/token", data={**form, "client_id": "web"})
        answers.append((response.status_code, response.json()))
    assert answers[0] == answers[1]
    status, body = answers[0]
    assert status == 400
    assert body == {"error": "invalid_grant", "error_description": "invalid username or password"}


async def test_a_disabled_account_cannot_log_in(http: httpx.AsyncClient, app: Starlette) -> None:
    await state_of(app).users.set_disabled("ada")
    form = {"grant_type": "password", "username": "ada", "password": PASSWORD, "client_id": "web"}
    response = await http.post("/oauth/token", data=form)
    assert response.json()["error"] == "invalid_grant"


async def test_failed_logins_are_throttled_with_retry_after(
    http: httpx.AsyncClient, clock: FrozenClock
) -> None:
    form = {**PASSWORD_FORM, "password": "wrong guess!", "client_id": "web"}
    for _ in range(5):
        assert (await http.post("/oauth/token", data=form)).status_code == 400
    throttled = await http.post("/oauth/token", data={**form, "password": PASSWORD})
    assert throttled.status_code == 429
    assert throttled.json()["error"] == "invalid_grant"
    assert int(throttled.headers["retry-after"]) == 900
    clock.advance(900)
    assert (await http.post("/oauth/token", data={**form, "password": PASSWORD})).status_code == 200


@pytest.mark.parametrize(
    ("form", "error"),
    [
        pytest.param({}, "invalid_request", id="no-grant-type"),
        pytest.param({"grant_type": "client_credentials"}, "unsupported_grant_type", id="grant"),
        pytest.param({"grant_type": "password", "username": "ada"}, "invalid_request", id="no-pw"),
        pytest.param({"grant_type": "refresh_token"}, "invalid_request", id="no-refresh-token"),
        pytest.param(
            {"grant_type": "password", "username": "ada", "password": PASSWORD, "scope": 'a"b'},
            "invalid_scope",
            id="malformed-scope",
        ),
    ],
)
async def test_request_errors(http: httpx.AsyncClient, form: dict[str, str], error: str) -> None:
    response = await http.post("/oauth/token", data={"client_id": "web", **form})
    assert response.status_code == 400
    assert response.json()["error"] == error
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        pytest.param(b"grant_type=password&grant_type=refresh_token", None, id="repeated"),
        pytest.param(b"grant_type=password&&x=1", None, id="empty-pair"),
        pytest.param(b"grant_type", None, id="no-equals"),
        pytest.param("username=\u00e9".encode(), None, id="not-ascii"),
        pytest.param(b"username=%ff", None, id="not-utf8"),
        pytest.param(b'{"grant_type": "password"}', "application/json", id="json"),
    ],
)
async def test_bodies_are_parsed_strictly(
    http: httpx.AsyncClient, body: bytes, content_type: str | None
) -> None:
    headers = {"content-type": content_type or "application/x-www-form-urlencoded"}
    response = await http.post("/oauth/token", content=body, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_empty_parameters_count_as_absent(http: httpx.AsyncClient) -> None:
    # RFC 6749 sec. 3.2: "Parameters sent without a value MUST be treated as if they
    # were omitted from the request."
    form = {"grant_type": "password", "username": "ada", "password": PASSWORD}
    response = await http.post("/oauth/token", data={**form, "client_id": "web", "scope": ""})
    assert response.json()["scope"] == "read write"


async def test_oversized_bodies_are_refused_before_parsing(http: httpx.AsyncClient) -> None:
    body = b"grant_type=password&username=" + b"a" * 20_000
    headers = {"content-type": "application/x-www-form-urlencoded"}
    response = await http.post("/oauth/token", content=body, headers=headers)
    assert response.status_code == 413
    assert response.json()["error"] == "invalid_request"

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b"a" * 1000

    # Without a Content-Length the cap applies while reading.
    streamed = await http.post("/oauth/token", content=chunks(), headers=headers)
    assert streamed.status_code == 413


async def test_a_malformed_content_length_is_not_a_server_error(http: httpx.AsyncClient) -> None:
    # "²" passes str.isdigit() but not int(). The declared length only lets an oversized
    # body be refused early; a malformed one is ignored and the cap applies while reading.
    form = b"grant_type=password&username=ada&password=x&client_id=web"
    for declared in (b"\xb2", b"-1", b"1e9", b" 12"):
        headers = {
            b"content-type": b"application/x-www-form-urlencoded",
            b"content-length": declared,
        }
        response = await http.post("/oauth/token", content=form, headers=headers)
        assert response.status_code == 400, declared
        assert response.json()["error"] == "invalid_grant"
    # Too many digits for int() (over 4,300): still a declared size above the cap.
    headers = {
        b"content-type": b"application/x-www-form-urlencoded",
        b"content-length": b"9" * 5000,
    }
    assert (await http.post("/oauth/token", content=form, headers=headers)).status_code == 413


# -- client authentication (RFC 6749 sec. 2.3) ---------------------------------------------


async def test_confidential_clients_authenticate_with_basic(http: httpx.AsyncClient) -> None:
    response = await http.post("/oauth/token", data=PASSWORD_FORM, auth=basic())
    assert response.status_code == 200
    access = response.json()["access_token"]
    assert (await http.get("/userinfo", headers=bearer(access))).status_code == 200


@pytest.mark.parametrize(
    ("extra", "auth"),
    [
        pytest.param({}, None, id="no-client"),
        pytest.param({"client_id": "unknown"}, None, id="unknown-public-client"),
        pytest.param({"client_id": "svc"}, None, id="confidential-without-secret"),
        pytest.param({}, basic(secret="wrong"), id="wrong-secret"),
        pytest.param({}, basic("unknown", "x"), id="unknown-basic-client"),
        pytest.param({}, basic("web", "anything"), id="public-client-with-basic"),
        pytest.param({"client_id": "svc", "client_secret": "s"}, None, id="client-secret-post"),
    ],
)
async def test_client_authentication_failures_are_invalid_client(
    http: httpx.AsyncClient, extra: dict[str, str], auth: httpx.BasicAuth | None
) -> None:
    form = {**PASSWORD_FORM, **extra}
    response = await http.post("/oauth/token", data=form, auth=auth or httpx.USE_CLIENT_DEFAULT)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic ")


async def test_malformed_basic_credentials_are_invalid_client(http: httpx.AsyncClient) -> None:
    headers = {"authorization": "Basic !!!notbase64"}
    response = await http.post("/oauth/token", data=PASSWORD_FORM, headers=headers)
    assert response.status_code == 401


async def test_basic_and_a_different_client_id_is_invalid_request(
    http: httpx.AsyncClient,
) -> None:
    response = await http.post(
        "/oauth/token", data={**PASSWORD_FORM, "client_id": "web"}, auth=basic()
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_basic_credentials_are_form_urlencoded(http: httpx.AsyncClient) -> None:
    # RFC 6749 sec. 2.3.1: the client id and secret are urlencoded before Basic encoding.
    encoded = basic("svc", CLIENT_SECRET.replace("-", "%2D"))
    response = await http.post("/oauth/token", data=PASSWORD_FORM, auth=encoded)
    assert response.status_code == 200
