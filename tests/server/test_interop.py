"""Clients we did not write: Authlib's OAuth 2.0 client, and PyJWT verifying with our JWKS."""

from __future__ import annotations

import time
import warnings
from typing import Any

import httpx
import jwt as pyjwt
import pytest
from authlib.deprecate import AuthlibDeprecationWarning
from starlette.applications import Starlette

from tests.server.conftest import CLIENT_SECRET, ISSUER, PASSWORD, bearer, login, serve, state_of
from tokenward.server import Settings, create_app
from tokenward.stores import MemoryStore
from tokenward.testing import FrozenClock

with warnings.catch_warnings():
    # Authlib 1.9 deprecates running on httpx in favour of its "httpx2" fork; httpx is
    # what our users have, so that is the client we test against.
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.integrations.base_client import OAuthError
    from authlib.integrations.httpx_client import AsyncOAuth2Client

TOKEN_URL = f"{ISSUER}/oauth/token"
REVOKE_URL = f"{ISSUER}/oauth/revoke"


def authlib_client(app: Starlette, **kwargs: Any) -> AsyncOAuth2Client:
    transport = httpx.ASGITransport(app=app)
    return AsyncOAuth2Client(transport=transport, base_url=ISSUER, **kwargs)


@pytest.mark.parametrize(
    "credentials",
    [
        pytest.param({"client_id": "web", "token_endpoint_auth_method": "none"}, id="public"),
        pytest.param({"client_id": "svc", "client_secret": CLIENT_SECRET}, id="confidential"),
    ],
)
async def test_authlib_password_grant_refresh_and_revocation(
    http: httpx.AsyncClient, app: Starlette, credentials: dict[str, str]
) -> None:
    async with authlib_client(app, scope="read", **credentials) as client:
        token = await client.fetch_token(
            TOKEN_URL, grant_type="password", username="ada", password=PASSWORD
        )
        assert token["token_type"] == "Bearer"
        assert token["scope"] == "read"
        first_refresh = token["refresh_token"]
        # The client sends the access token itself (RFC 6750 header).
        info = await client.get("/userinfo")
        assert info.json()["username"] == "ada"

        refreshed = await client.refresh_token(TOKEN_URL, refresh_token=first_refresh)
        assert refreshed["refresh_token"] != first_refresh
        assert (await client.get("/userinfo")).status_code == 200

        revoked = await client.revoke_token(
            REVOKE_URL, token=refreshed["refresh_token"], token_type_hint="refresh_token"
        )
        assert revoked.status_code == 200
        assert (await client.get("/userinfo")).status_code == 401


async def test_authlib_sees_rfc6749_errors(http: httpx.AsyncClient, app: Starlette) -> None:
    async with authlib_client(app, client_id="web", token_endpoint_auth_method="none") as client:
        with pytest.raises(OAuthError) as caught:
            await client.fetch_token(
                TOKEN_URL, grant_type="password", username="ada", password="wrong password"
            )
    assert caught.value.error == "invalid_grant"


async def test_pyjwt_verifies_our_tokens_with_our_jwks(settings: Settings) -> None:
    # PyJWT reads the wall clock, so this server's frozen clock starts at the real time.
    app = create_app(settings, store=MemoryStore(), clock=FrozenClock(time.time()))
    async with serve(app) as http:
        await state_of(app).users.create_user("ada", PASSWORD, scopes=["read"])
        pair = await login(http)
        jwks = (await http.get("/.well-known/jwks.json")).json()
        assert (await http.get("/userinfo", headers=bearer(pair["access_token"]))).is_success
    header = pyjwt.get_unverified_header(pair["access_token"])
    assert header["typ"] == "at+jwt"
    key = pyjwt.PyJWKSet.from_dict(jwks)[header["kid"]]
    claims = pyjwt.decode(
        pair["access_token"],
        key=key,
        algorithms=["ES256"],
        audience="api",
        issuer=ISSUER,
        options={"require": ["exp", "iat", "nbf", "sub", "jti"]},
    )
    assert claims["preferred_username"] == "ada"
    assert claims["scope"] == "read"
    # Refresh tokens are for the issuer only: PyJWT refuses them for the API audience.
    with pytest.raises(pyjwt.InvalidAudienceError):
        pyjwt.decode(pair["refresh_token"], key=key, algorithms=["ES256"], audience="api")
