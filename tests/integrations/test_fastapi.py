"""The FastAPI security dependency, and the middleware under FastAPI.

No ``from __future__ import annotations`` here: FastAPI reads the route functions'
annotations at runtime, and these routes close over local dependencies.
"""

import inspect
import warnings
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Request, Security, WebSocket
from starlette.exceptions import StarletteDeprecationWarning

from tests.integrations.conftest import (
    EXPIRED,
    INVALID,
    ISSUER,
    MALFORMED,
    MISSING,
    REVOKED,
    bearer,
    insufficient,
)
from tokenward.integrations import SlidingConfig, TokenwardMiddleware
from tokenward.integrations.fastapi import TokenwardBearer, require_token
from tokenward.service import AccessClaims, TokenPair, TokenService, Verifier
from tokenward.testing import FrozenClock

with warnings.catch_warnings():
    # As in test_asgi: Starlette 1.x deprecates its httpx test client; used for websockets.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient, WebSocketDenialResponse

TOKEN_URL = "https://auth.test/oauth/token"


def make_app(verifier: Verifier) -> FastAPI:
    bearer_scheme = require_token(
        verifier, token_url=TOKEN_URL, scopes={"read": "Read items", "write": "Change items"}
    )
    optional_scheme = require_token(verifier, scheme_name="optional", auto_error=False)
    app = FastAPI()

    @app.get("/items")
    async def items(
        claims: Annotated[AccessClaims, Security(bearer_scheme, scopes=["read"])],
    ) -> Any:
        return {"sub": claims.sub, "scopes": sorted(claims.scopes)}

    async def writer(
        claims: Annotated[AccessClaims, Security(bearer_scheme, scopes=["write"])],
    ) -> AccessClaims:
        return claims

    @app.post("/items/{name}")
    async def change(
        name: str,
        claims: Annotated[AccessClaims, Security(writer, scopes=["admin"])],
    ) -> Any:
        return {"name": name, "sub": claims.sub}

    @app.get("/whoami")
    async def whoami(claims: Annotated[AccessClaims | None, Depends(optional_scheme)]) -> Any:
        return {"sub": claims.sub if claims else None}

    @app.get("/health")
    async def health() -> Any:
        return {"ok": True}

    return app


async def call(app: FastAPI, method: str, path: str, headers: Any = None) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await client.request(method, path, headers=headers)


def assert_refused(response: httpx.Response, status: int, challenge: str, error: str) -> None:
    assert response.status_code == status
    assert response.headers.get_list("www-authenticate") == [challenge]
    assert response.json() == {"detail": error}


async def test_valid_token(verifier: Verifier, pair: TokenPair) -> None:
    response = await call(make_app(verifier), "GET", "/items", bearer(pair.access_token))
    assert response.json() == {"sub": "ada", "scopes": ["read", "write"]}


async def test_missing_header_has_no_error_attribute(verifier: Verifier) -> None:
    assert_refused(await call(make_app(verifier), "GET", "/items"), 401, MISSING, "unauthorized")


@pytest.mark.parametrize("value", ["Bearer", "Bearer a b"], ids=["no-token", "space-inside"])
async def test_malformed_header(verifier: Verifier, value: str) -> None:
    response = await call(make_app(verifier), "GET", "/items", {"Authorization": value})
    assert_refused(response, 400, MALFORMED, "invalid_request")


async def test_expired_and_revoked(
    verifier: Verifier, service: TokenService, pair: TokenPair, clock: FrozenClock
) -> None:
    app = make_app(verifier)
    other = await service.issue("bob", scope="read")
    await service.revoke_session(other.sid)
    response = await call(app, "GET", "/items", bearer(other.access_token))
    assert_refused(response, 401, REVOKED, "invalid_token")
    clock.advance(900)
    response = await call(app, "GET", "/items", bearer(pair.access_token))
    assert_refused(response, 401, EXPIRED, "invalid_token")
    response = await call(app, "GET", "/items", bearer("abc.def.ghi"))
    assert_refused(response, 401, INVALID, "invalid_token")


async def test_scopes_of_nested_security_are_required_together(
    verifier: Verifier, service: TokenService, pair: TokenPair
) -> None:
    app = make_app(verifier)
    response = await call(app, "POST", "/items/x", bearer(pair.access_token))
    assert_refused(response, 403, insufficient("admin write"), "insufficient_scope")
    admin = await service.issue("root", scope="write admin")
    response = await call(app, "POST", "/items/x", bearer(admin.access_token))
    assert response.json() == {"name": "x", "sub": "root"}


async def test_optional_dependency(verifier: Verifier, pair: TokenPair) -> None:
    app = make_app(verifier)
    assert (await call(app, "GET", "/whoami")).json() == {"sub": None}
    assert (await call(app, "GET", "/whoami", bearer(pair.access_token))).json() == {"sub": "ada"}
    response = await call(app, "GET", "/whoami", bearer("abc.def.ghi"))
    assert_refused(response, 401, INVALID, "invalid_token")


async def test_openapi_shows_the_password_flow_and_the_scopes(verifier: Verifier) -> None:
    document = (await call(make_app(verifier), "GET", "/openapi.json")).json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["tokenward"] == {
        "type": "oauth2",
        "flows": {
            "password": {
                "tokenUrl": TOKEN_URL,
                "scopes": {"read": "Read items", "write": "Change items"},
            }
        },
    }
    paths = document["paths"]
    assert paths["/items"]["get"]["security"] == [{"tokenward": ["read"]}]
    assert paths["/items/{name}"]["post"]["security"] == [{"tokenward": ["admin", "write"]}]
    assert paths["/whoami"]["get"]["security"] == [{"optional": []}]
    assert "security" not in paths["/health"]["get"]


def test_the_dependency_is_a_coroutine(verifier: Verifier) -> None:
    # A plain def dependency would run in FastAPI's thread pool (~110 us a request).

    assert inspect.iscoroutinefunction(TokenwardBearer.__call__)


async def test_fastapi_under_the_middleware(verifier: Verifier, pair: TokenPair) -> None:
    app = FastAPI()

    @app.get("/claims")
    async def claims(request: Request) -> Any:
        found: AccessClaims = request.scope["tokenward"]
        return {"sub": found.sub}

    app.add_middleware(TokenwardMiddleware, verifier=verifier, scopes=["read"])
    assert (await call(app, "GET", "/claims", bearer(pair.access_token))).json() == {"sub": "ada"}
    response = await call(app, "GET", "/claims")
    assert (response.status_code, response.headers["www-authenticate"]) == (401, MISSING)
    assert response.json() == {"error": "unauthorized"}


# -- websocket routes ----------------------------------------------------------------------


def test_the_dependency_on_a_websocket_route(verifier: Verifier, pair: TokenPair) -> None:
    scheme = require_token(verifier)
    app = FastAPI()

    @app.websocket("/ws")
    async def echo(
        websocket: WebSocket, claims: Annotated[AccessClaims, Security(scheme, scopes=["read"])]
    ) -> None:
        await websocket.accept()
        await websocket.send_json({"sub": claims.sub})
        await websocket.close()

    with TestClient(app) as client:
        with client.websocket_connect("/ws", headers=bearer(pair.access_token)) as ws:
            assert ws.receive_json() == {"sub": "ada"}
        with pytest.raises(WebSocketDenialResponse) as missing, client.websocket_connect("/ws"):
            pass
    assert missing.value.status_code == 401
    assert missing.value.headers["www-authenticate"] == MISSING


# -- under the middleware in cookie mode ---------------------------------------------------


def cookie_app(verifier: Verifier, service: TokenService, *, dependency: Verifier) -> FastAPI:
    scheme = require_token(dependency)
    app = FastAPI()

    @app.get("/read")
    async def read(claims: Annotated[AccessClaims, Security(scheme, scopes=["read"])]) -> Any:
        return {"sub": claims.sub}

    @app.get("/admin")
    async def admin(claims: Annotated[AccessClaims, Security(scheme, scopes=["admin"])]) -> Any:
        return {"sub": claims.sub}

    @app.get("/public")
    async def public(request: Request) -> Any:
        return {"sub": request.scope["tokenward"].sub}

    sliding = SlidingConfig(service, paths=["/*"], cookie="tw_access")
    app.add_middleware(TokenwardMiddleware, verifier=verifier, sliding=sliding)
    return app


async def cookie_get(app: FastAPI, path: str, cookie: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        client.cookies.set("tw_access", cookie)
        return await client.get(path)


async def test_the_dependency_uses_the_claims_the_middleware_verified_from_its_cookie(
    verifier: Verifier, service: TokenService, pair: TokenPair
) -> None:
    app = cookie_app(verifier, service, dependency=verifier)
    assert (await cookie_get(app, "/public", pair.access_token)).json() == {"sub": "ada"}
    assert (await cookie_get(app, "/read", pair.access_token)).json() == {"sub": "ada"}
    response = await cookie_get(app, "/admin", pair.access_token)
    assert_refused(response, 403, insufficient("admin"), "insufficient_scope")


async def test_claims_verified_by_another_verifier_are_not_reused(
    verifier: Verifier, service: TokenService, pair: TokenPair, clock: FrozenClock
) -> None:
    # Another verifier may differ in audience, issuer or deny list: what the middleware's
    # verifier accepted proves nothing to it, and the dependency holds no token of its own.
    other = Verifier(verifier.keys, issuer=ISSUER, audience="another-api", clock=clock)
    app = cookie_app(verifier, service, dependency=other)
    assert (await cookie_get(app, "/public", pair.access_token)).status_code == 200
    response = await cookie_get(app, "/read", pair.access_token)
    assert_refused(response, 401, MISSING, "unauthorized")


async def test_the_dependency_never_takes_anonymous_for_verified(verifier: Verifier) -> None:
    # On an optional path the middleware sets scope["tokenward"] = None.
    scheme = require_token(verifier)
    app = FastAPI()

    @app.get("/open")
    async def open_route(claims: Annotated[AccessClaims, Security(scheme)]) -> Any:
        return {"sub": claims.sub}

    app.add_middleware(TokenwardMiddleware, verifier=verifier, optional_paths=["/open"])
    assert_refused(await call(app, "GET", "/open"), 401, MISSING, "unauthorized")
