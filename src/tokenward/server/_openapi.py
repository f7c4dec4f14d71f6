"""The OpenAPI 3.0 document (``GET /openapi.json``) and interactive docs (``GET /docs``).

The document is a hand-written dict, built per application so that ``servers`` names the
configured issuer. schemathesis checks the running server against it in the test suite:
every status code and body the server can produce is listed here.

``/docs`` is a small HTML page that loads Swagger UI from the jsDelivr CDN (pinned
version): the package ships no JavaScript. Offline deployments can ignore it; the JSON
document is complete on its own.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from tokenward.server._config import Settings
from tokenward.server._openapi_schemas import COMPONENTS, ref, responses
from tokenward.server._state import runtime

__all__ = ["docs_endpoint", "openapi_document", "openapi_endpoint"]

_FORM = "application/x-www-form-urlencoded"
_BEARER: list[dict[str, list[str]]] = [{"oauth2": []}]
_ADMIN: list[dict[str, list[str]]] = [{"oauth2": ["admin"]}]
_OPTIONAL_BASIC: list[dict[str, list[str]]] = [{"clientBasic": []}, {}]


def _json(name: str, description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ref(name)}}}


def _body(media: str, name: str) -> dict[str, Any]:
    return {"required": True, "content": {media: {"schema": ref(name)}}}


def _path(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string"},
    }


_CSRF = {
    "name": "X-CSRF-Token",
    "in": "header",
    "required": False,
    "description": "The csrf_token of the last cookie-mode response (any value at login).",
    "schema": {"type": "string"},
}
_NO_CONTENT = {"204": {"description": "Done."}}

_PATHS: dict[str, Any] = {
    "/oauth/token": {"post": {
        "tags": ["OAuth 2.0"], "summary": "Password and refresh_token grants (RFC 6749)",
        "security": _OPTIONAL_BASIC, "requestBody": _body(_FORM, "TokenForm"),
        "responses": responses({"200": _json("TokenResponse")}, 400, 401, 413, 429),
    }},
    "/oauth/revoke": {"post": {
        "tags": ["OAuth 2.0"], "summary": "Revoke a token and its session (RFC 7009)",
        "security": _OPTIONAL_BASIC, "requestBody": _body(_FORM, "TokenHintForm"),
        "responses": responses({"200": {"description": "Revoked, or nothing to revoke."}},
                               400, 401, 413),
    }},
    "/oauth/introspect": {"post": {
        "tags": ["OAuth 2.0"], "summary": "Token introspection (RFC 7662), confidential clients",
        "security": [{"clientBasic": []}], "requestBody": _body(_FORM, "TokenHintForm"),
        "responses": responses({"200": _json("Introspection")}, 400, 401, 413),
    }},
    "/.well-known/jwks.json": {"get": {
        "tags": ["Discovery"], "summary": "Public signing keys (cacheable)",
        "responses": responses({"200": _json("JWKS")}),
    }},
    "/.well-known/oauth-authorization-server": {"get": {
        "tags": ["Discovery"], "summary": "Authorization server metadata (RFC 8414)",
        "responses": responses({"200": _json("Metadata")}),
    }},
    "/userinfo": {"get": {
        "tags": ["Account"], "summary": "The caller's subject, username and scopes",
        "security": _BEARER, "responses": responses({"200": _json("UserInfo")}, 400, 401),
    }},
    "/sessions": {"get": {
        "tags": ["Account"], "summary": "The caller's active sessions",
        "security": _BEARER, "responses": responses({"200": _json("SessionList")}, 400, 401),
    }},
    "/sessions/{sid}": {"delete": {
        "tags": ["Account"], "summary": "End one of the caller's sessions",
        "security": _BEARER, "parameters": [_path("sid", "Session id from GET /sessions")],
        "responses": responses(_NO_CONTENT, 400, 401, 404),
    }},
    "/logout": {"post": {
        "tags": ["Account"], "summary": "End the current session",
        "security": _BEARER, "responses": responses(_NO_CONTENT, 400, 401),
    }},
    "/logout/all": {"post": {
        "tags": ["Account"], "summary": "End every session of the caller",
        "security": _BEARER, "responses": responses({"200": _json("Revoked")}, 400, 401),
    }},
    "/admin/users": {
        "get": {
            "tags": ["Admin"], "summary": "List users (admin scope)", "security": _ADMIN,
            "responses": responses({"200": _json("UserList")}, 400, 401, 403),
        },
        "post": {
            "tags": ["Admin"], "summary": "Create a user (admin scope)", "security": _ADMIN,
            "requestBody": _body("application/json", "NewUser"),
            "responses": responses({"201": _json("User", "Created.")}, 400, 401, 403, 409, 413),
        },
    },
    "/admin/users/{username}/disable": {"post": {
        "tags": ["Admin"], "summary": "Disable a user and end their sessions (admin scope)",
        "security": _ADMIN, "parameters": [_path("username", "The user")],
        "responses": responses({"200": _json("UserChange")}, 400, 401, 403, 404),
    }},
    "/admin/users/{username}/password": {"post": {
        "tags": ["Admin"], "summary": "Set a password and end the user's sessions (admin scope)",
        "security": _ADMIN, "parameters": [_path("username", "The user")],
        "requestBody": _body("application/json", "NewPassword"),
        "responses": responses({"200": _json("UserChange")}, 400, 401, 403, 404, 413),
    }},
    "/register": {"post": {
        "tags": ["Account"], "summary": "Self-registration (404 unless enabled)",
        "requestBody": _body("application/json", "Registration"),
        "responses": responses({"201": _json("Registered", "Created.")}, 400, 404, 409, 413),
    }},
    "/cookie/login": {"post": {
        "tags": ["Cookie mode"], "summary": "Log in; the refresh token goes into a cookie",
        "parameters": [_CSRF], "requestBody": _body(_FORM, "CookieLoginForm"),
        "responses": responses({"200": _json("CookieTokenResponse")}, 400, 401, 403, 413, 429),
    }},
    "/cookie/refresh": {"post": {
        "tags": ["Cookie mode"], "summary": "Rotate the refresh cookie, get an access token",
        "parameters": [_CSRF],
        "responses": responses({"200": _json("CookieTokenResponse")}, 400, 403),
    }},
    "/cookie/logout": {"post": {
        "tags": ["Cookie mode"], "summary": "End the cookie's session and clear the cookies",
        "parameters": [_CSRF], "responses": responses(_NO_CONTENT, 400, 403),
    }},
    "/metrics": {"get": {
        "tags": ["Operations"], "summary": "Prometheus metrics",
        "responses": {"200": {"description": "Counters in the Prometheus text format.",
                              "content": {"text/plain": {"schema": {"type": "string"}}}}},
    }},
}  # fmt: skip


def openapi_document(settings: Settings) -> dict[str, Any]:
    """The OpenAPI document describing a server with these settings."""
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "tokenward auth server",
            "version": "1",
            "description": "OAuth 2.0 token, revocation and introspection endpoints, JWKS, "
            "sessions, users and a cookie mode for browser apps.",
        },
        "servers": [{"url": settings.issuer}],
        "paths": _PATHS,
        "components": COMPONENTS,
    }


async def openapi_endpoint(request: Request) -> Response:
    """``GET /openapi.json``."""
    return JSONResponse(openapi_document(runtime(request).settings))


_SWAGGER = "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5.17.14"
_DOCS_PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>tokenward auth server: API</title>
<link rel="stylesheet" href="{_SWAGGER}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{_SWAGGER}/swagger-ui-bundle.js"></script>
<script>
SwaggerUIBundle({{url: "openapi.json", dom_id: "#swagger-ui"}});
</script>
</body>
</html>
"""


async def docs_endpoint(request: Request) -> Response:
    """``GET /docs``: Swagger UI (loaded from a CDN) over ``/openapi.json``."""
    return HTMLResponse(_DOCS_PAGE)
