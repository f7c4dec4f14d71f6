"""The auth server as an ASGI application: :func:`create_app`.

::

    from tokenward.server import create_app, load_settings

    app = create_app(load_settings("tokenward.toml"))   # then: uvicorn, hypercorn, ...

Startup (the ASGI lifespan) opens the store named by ``settings.store`` (unless a store
object is passed in, which the caller then owns and closes), loads or creates the
signing keys, applies the revocation events already recorded, and starts the background
tasks (``_background.py``). Shutdown stops them and closes the store; the ASGI server
has finished in-flight requests by then, so shutdown is graceful.

Errors: every endpoint raises :class:`~tokenward.server._http.ApiError` for answers
other than success. A :class:`~tokenward.stores.StoreUnavailableError` anywhere becomes
``503 {"error": "temporarily_unavailable"}`` with ``Retry-After``, never a 500.
Anything else unexpected is a JSON 500 with no detail (details go to the log).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tokenward.server import _cookies, _discovery, _revocation, _sessions, _token, _users
from tokenward.server._audit import audit
from tokenward.server._background import Housekeeper
from tokenward.server._config import Settings, open_services
from tokenward.server._http import (
    COOKIE_PATH,
    INTROSPECT_PATH,
    JWKS_PATH,
    METADATA_PATH,
    REVOKE_PATH,
    TOKEN_PATH,
    ApiError,
    error_response,
)
from tokenward.server._metrics import metrics_endpoint
from tokenward.server._openapi import docs_endpoint, openapi_endpoint
from tokenward.server._state import Runtime
from tokenward.service import Clock, SystemClock
from tokenward.stores import Store, StoreUnavailableError, open_store

__all__ = ["STORE_RETRY_AFTER", "create_app"]

STORE_RETRY_AFTER = 5
"""Seconds a client is asked to wait after a 503 caused by a store outage."""

_log = logging.getLogger("tokenward.server")


def _routes() -> list[Route]:
    post, get = ["POST"], ["GET"]
    return [
        Route(TOKEN_PATH, _token.TokenEndpoint(), methods=post, name="token_endpoint"),
        Route(REVOKE_PATH, _revocation.revoke_endpoint, methods=post),
        Route(INTROSPECT_PATH, _revocation.introspect_endpoint, methods=post),
        Route(JWKS_PATH, _discovery.jwks_endpoint, methods=get),
        Route(METADATA_PATH, _discovery.metadata_endpoint, methods=get),
        Route("/userinfo", _sessions.userinfo_endpoint, methods=get),
        Route("/sessions", _sessions.sessions_endpoint, methods=get),
        Route("/sessions/{sid}", _sessions.delete_session_endpoint, methods=["DELETE"]),
        Route("/logout", _sessions.logout_endpoint, methods=post),
        Route("/logout/all", _sessions.logout_all_endpoint, methods=post),
        Route("/admin/users", _users.list_users_endpoint, methods=get),
        Route("/admin/users", _users.create_user_endpoint, methods=post),
        Route("/admin/users/{username}/disable", _users.disable_user_endpoint, methods=post),
        Route("/admin/users/{username}/password", _users.set_password_endpoint, methods=post),
        Route("/register", _users.register_endpoint, methods=post),
        Route(COOKIE_PATH + "/login", _cookies.cookie_login_endpoint, methods=post),
        Route(COOKIE_PATH + "/refresh", _cookies.cookie_refresh_endpoint, methods=post),
        Route(COOKIE_PATH + "/logout", _cookies.cookie_logout_endpoint, methods=post),
        Route("/metrics", metrics_endpoint, methods=get),
        Route("/openapi.json", openapi_endpoint, methods=get),
        Route("/docs", docs_endpoint, methods=get),
    ]


async def _api_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, ApiError):  # pragma: no cover - registered for ApiError only
        raise exc
    return exc.response()


async def _store_unavailable(request: Request, exc: Exception) -> Response:
    request.app.state.tokenward.metrics.store_unavailable.inc()
    audit("store_unavailable", level=logging.WARNING, path=request.url.path)
    return error_response(
        503,
        "temporarily_unavailable",
        "the session store is unavailable; retry later",
        headers={"Retry-After": str(STORE_RETRY_AFTER)},
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, HTTPException):  # pragma: no cover - registered for HTTPException
        raise exc
    codes = {404: "not_found", 405: "method_not_allowed"}
    return error_response(
        exc.status_code, codes.get(exc.status_code, "invalid_request"), headers=exc.headers
    )


async def _server_error(request: Request, exc: Exception) -> Response:
    _log.error("unhandled %s on %s", type(exc).__name__, request.url.path)
    return error_response(500, "server_error")


def create_app(
    settings: Settings,
    *,
    store: Store | None = None,
    clock: Clock | None = None,
    feed_interval: float = 1.0,
    key_interval: float = 60.0,
) -> Starlette:
    """Build the auth server application for ``settings``.

    ``store``: use this store instead of opening ``settings.store`` (the caller closes it).
    ``clock``: the time source (a ``FrozenClock`` in tests). ``feed_interval``: seconds
    between revocation polls where the store has no push feed (SQLite; Redis and
    PostgreSQL push). ``key_interval``: seconds between key-ring checks.
    """
    state = Runtime(settings=settings, clock=clock or SystemClock())
    housekeeper = Housekeeper(state, feed_interval=feed_interval, key_interval=key_interval)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        opened = store or await open_store(settings.store)
        try:
            tokens, users = await open_services(settings, opened, clock=state.clock)
            state.start(opened, tokens, users)
            await housekeeper.sync_revocations()
            housekeeper.start()
            _log.info("tokenward auth server started (issuer %s)", settings.issuer)
            yield
        finally:
            await housekeeper.stop()
            state.stop()
            if store is None:
                await opened.close()
            _log.info("tokenward auth server stopped")

    app = Starlette(
        routes=_routes(),
        lifespan=lifespan,
        exception_handlers={
            ApiError: _api_error,
            StoreUnavailableError: _store_unavailable,
            HTTPException: _http_error,
            Exception: _server_error,
        },
    )
    app.state.tokenward = state
    app.state.housekeeper = housekeeper
    return app
