"""JWKS, RFC 8414 metadata, the OpenAPI document, the docs page and unknown routes."""

from __future__ import annotations

from dataclasses import replace

import httpx
from starlette.applications import Starlette
from starlette.routing import Route

from tests.server.conftest import ISSUER, serve, state_of
from tokenward.server import Settings, create_app
from tokenward.stores import MemoryStore
from tokenward.testing import FrozenClock


async def test_jwks_publishes_public_keys_with_cache_headers(
    http: httpx.AsyncClient, app: Starlette
) -> None:
    response = await http.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=300"
    keys = response.json()["keys"]
    assert len(keys) == 1
    assert keys[0]["kty"] == "EC"
    assert keys[0]["kid"] == state_of(app).tokens.keyring.current.kid
    assert "d" not in keys[0]


async def test_hmac_keys_are_never_published(settings: Settings) -> None:
    app = create_app(replace(settings, algorithm="HS256"), store=MemoryStore())
    async with serve(app) as http:
        assert (await http.get("/.well-known/jwks.json")).json() == {"keys": []}


async def test_rfc8414_metadata(http: httpx.AsyncClient) -> None:
    response = await http.get("/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    meta = response.json()
    assert meta["issuer"] == ISSUER
    assert meta["token_endpoint"] == f"{ISSUER}/oauth/token"
    assert meta["revocation_endpoint"] == f"{ISSUER}/oauth/revoke"
    assert meta["introspection_endpoint"] == f"{ISSUER}/oauth/introspect"
    assert meta["jwks_uri"] == f"{ISSUER}/.well-known/jwks.json"
    assert meta["grant_types_supported"] == ["password", "refresh_token"]
    assert meta["response_types_supported"] == []
    assert meta["token_endpoint_auth_methods_supported"] == ["client_secret_basic", "none"]
    assert meta["introspection_endpoint_auth_methods_supported"] == ["client_secret_basic"]


async def test_metadata_follows_an_issuer_with_a_path(settings: Settings) -> None:
    app = create_app(replace(settings, issuer="https://example.com/auth/"), store=MemoryStore())
    async with serve(app) as http:
        meta = (await http.get("/.well-known/oauth-authorization-server")).json()
    assert meta["token_endpoint"] == "https://example.com/auth/oauth/token"


async def test_the_openapi_document_lists_every_route(
    http: httpx.AsyncClient, app: Starlette
) -> None:
    response = await http.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"] == "3.0.3"
    assert document["servers"] == [{"url": ISSUER}]
    documented = {
        (path, method.upper()) for path, ops in document["paths"].items() for method in ops
    }
    served = {
        (route.path, method)
        for route in app.routes
        if isinstance(route, Route) and route.path not in ("/openapi.json", "/docs")
        for method in (route.methods or set()) - {"HEAD"}
    }
    assert documented == served


async def test_docs_page_loads_swagger_ui_over_the_document(http: httpx.AsyncClient) -> None:
    response = await http.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "swagger-ui-bundle.js" in response.text
    assert 'url: "openapi.json"' in response.text


async def test_unknown_routes_and_methods_get_json_errors(http: httpx.AsyncClient) -> None:
    missing = await http.get("/nothing-here")
    assert missing.status_code == 404
    assert missing.json() == {"error": "not_found"}
    wrong = await http.get("/oauth/token")
    assert wrong.status_code == 405
    assert wrong.json() == {"error": "method_not_allowed"}
    assert wrong.headers["allow"] == "POST"


async def test_the_app_refuses_requests_before_startup(
    settings: Settings, clock: FrozenClock
) -> None:
    app = create_app(settings, store=MemoryStore(), clock=clock)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
        response = await http.get("/.well-known/jwks.json")
    assert response.status_code == 500
    assert response.json() == {"error": "server_error"}
