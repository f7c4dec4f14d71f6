"""TokenwardMiddleware under Litestar: same scope key, same refusals."""

from __future__ import annotations

from typing import Any, cast

import httpx
from litestar import Litestar, Request, get
from litestar.middleware import DefineMiddleware

from tests.integrations.conftest import INVALID, MISSING, bearer, insufficient
from tokenward.integrations import TokenwardMiddleware
from tokenward.service import AccessClaims, TokenPair, Verifier


@get("/me", sync_to_thread=False)
def me(request: Request[Any, Any, Any]) -> dict[str, Any]:
    claims: AccessClaims = cast("dict[str, Any]", request.scope)["tokenward"]
    return {"sub": claims.sub, "scopes": sorted(claims.scopes)}


def make_app(verifier: Verifier, **options: Any) -> Litestar:
    middleware = DefineMiddleware(TokenwardMiddleware, verifier=verifier, **options)
    return Litestar(route_handlers=[me], middleware=[middleware])


async def call(app: Litestar, headers: dict[str, str] | None = None) -> httpx.Response:
    transport = httpx.ASGITransport(app=cast("Any", app))  # Litestar types scopes as TypedDicts.
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await client.get("/me", headers=headers)


async def test_litestar_accepts_and_refuses(verifier: Verifier, pair: TokenPair) -> None:
    app = make_app(verifier)
    response = await call(app, bearer(pair.access_token))
    assert response.json() == {"sub": "ada", "scopes": ["read", "write"]}
    response = await call(app)
    assert (response.status_code, response.headers["www-authenticate"]) == (401, MISSING)
    response = await call(app, bearer("abc.def.ghi"))
    assert (response.status_code, response.headers["www-authenticate"]) == (401, INVALID)
    assert response.json() == {"error": "invalid_token"}


async def test_litestar_insufficient_scope(verifier: Verifier, pair: TokenPair) -> None:
    response = await call(make_app(verifier, scopes=["admin"]), bearer(pair.access_token))
    assert response.status_code == 403
    assert response.headers["www-authenticate"] == insufficient("admin")
