"""Cookie mode for browser apps: the refresh token lives in an HttpOnly cookie.

A single-page app must not keep a refresh token where script can read it (one XSS and
the session is gone for weeks). In cookie mode:

* ``POST /cookie/login`` (form: ``username``, ``password``, ``client_id``, ``scope``)
  answers the access token in the body (keep it in memory) and sets
  ``tw_refresh=<refresh token>; HttpOnly; Secure; SameSite=Strict; Path=<prefix>/cookie``
  (``Secure`` unless ``cookie_secure`` is off for local HTTP development; the prefix is
  ``cookie_path_prefix``, for servers mounted under a path behind a proxy).
* ``POST /cookie/refresh`` rotates the cookie and answers a new access token.
* ``POST /cookie/logout`` revokes the cookie's session and clears the cookies.

Cookie mode is for public clients only (``client_id``, no secret): a browser cannot keep
a client secret, and the cookie endpoints authenticate no client. Login refuses a
confidential client (``unauthorized_client``), and refresh and logout refuse a refresh
token issued to one (``invalid_grant``), which otherwise could be rotated or revoked here
without the client's secret that ``/oauth/token`` and ``/oauth/revoke`` require.

CSRF. Refresh and logout are authenticated by a cookie the browser attaches on its own,
so they are protected three ways:

1. ``SameSite=Strict``: the cookie is not sent on cross-site requests at all.
2. Double submit: the response also sets ``tw_csrf`` (readable by script, ``Path=/``)
   and returns it as ``csrf_token``; the app sends it back in ``X-CSRF-Token``. The value
   is an HMAC keyed with the refresh token, so it cannot be forged or planted without
   the HttpOnly cookie, and it changes with every rotation. A custom header also forces
   a CORS preflight, which this server never approves, on any cross-origin attempt.
3. ``Origin`` (and ``Sec-Fetch-Site``) when the browser sends them: the origin must be
   the issuer's origin or the origin the request was addressed to.

Login has no cookie yet; it requires the ``X-CSRF-Token`` header to be present (any
value, the preflight is what counts) and passes the same ``Origin`` check, which stops
login CSRF (a page logging the victim into the attacker's account).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import math
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tokenward.errors import InvalidTokenError, TokenwardError
from tokenward.jose import jwt
from tokenward.server._audit import audit
from tokenward.server._clients import authenticate_client
from tokenward.server._http import COOKIE_PATH, NO_STORE, ApiError, read_form, required
from tokenward.server._state import Runtime, runtime
from tokenward.server._token import parse_scope, password_login, rotate, session_client, token_body
from tokenward.service import TokenPair

__all__ = [
    "CSRF_COOKIE",
    "CSRF_HEADER",
    "REFRESH_COOKIE",
    "cookie_login_endpoint",
    "cookie_logout_endpoint",
    "cookie_refresh_endpoint",
    "csrf_token",
]

REFRESH_COOKIE = "tw_refresh"
CSRF_COOKIE = "tw_csrf"
CSRF_HEADER = "x-csrf-token"


def csrf_token(refresh_token: str) -> str:
    """The double-submit token bound to ``refresh_token`` (HMAC-SHA256, base64url)."""
    digest = hmac.new(refresh_token.encode(), b"tokenward csrf v1", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _csrf_failure(state: Runtime, reason: str) -> ApiError:
    state.metrics.csrf_failures.inc()
    audit("csrf_rejected", level=logging.WARNING, reason=reason)
    return ApiError(403, "invalid_request", "the CSRF check failed")


def _check_origin(request: Request, state: Runtime) -> None:
    if request.headers.get("sec-fetch-site") == "cross-site":
        raise _csrf_failure(state, "cross_site")
    origin = request.headers.get("origin")
    if origin is None:
        return
    host = request.headers.get("host", "")
    allowed = {_origin(state.settings.issuer), f"https://{host}".lower(), f"http://{host}".lower()}
    if origin.lower() not in allowed:
        raise _csrf_failure(state, "origin")


def _cookie_path(state: Runtime) -> str:
    return state.settings.cookie_path_prefix.rstrip("/") + COOKIE_PATH


def _respond(state: Runtime, pair: TokenPair) -> Response:
    csrf = csrf_token(pair.refresh_token)
    body = token_body(pair, with_refresh=False)
    body["csrf_token"] = csrf
    response = JSONResponse(body, headers=NO_STORE)
    max_age = max(0, pair.refresh_expires_at - math.floor(state.clock.now()))
    secure = state.settings.cookie_secure
    response.set_cookie(
        REFRESH_COOKIE, pair.refresh_token, max_age=max_age, path=_cookie_path(state),
        secure=secure, httponly=True, samesite="strict",
    )  # fmt: skip
    response.set_cookie(
        CSRF_COOKIE, csrf, max_age=max_age, path="/", secure=secure, samesite="strict"
    )
    return response


def _clear(state: Runtime, response: Response) -> Response:
    secure = state.settings.cookie_secure
    response.delete_cookie(
        REFRESH_COOKIE, path=_cookie_path(state), secure=secure, httponly=True, samesite="strict"
    )
    response.delete_cookie(CSRF_COOKIE, path="/", secure=secure, samesite="strict")
    return response


def _cookie_credentials(request: Request, state: Runtime) -> str:
    """The refresh cookie, after the CSRF checks of a cookie-authenticated change."""
    _check_origin(request, state)
    token = request.cookies.get(REFRESH_COOKIE)
    presented = request.headers.get(CSRF_HEADER)
    if not token:
        raise ApiError(400, "invalid_grant", "no refresh cookie")
    if presented is None or not hmac.compare_digest(presented.encode(), csrf_token(token).encode()):
        raise _csrf_failure(state, "token")
    return token


def _public_client(state: Runtime, client_id: object) -> str:
    """``client_id`` when it names a configured public client; else ``invalid_grant``."""
    client = state.settings.client(client_id) if type(client_id) is str else None
    if client is None or client.confidential:
        raise ApiError(400, "invalid_grant", "the refresh token was not issued to a public client")
    return client.client_id


async def cookie_login_endpoint(request: Request) -> Response:
    """``POST /cookie/login``: password login; the refresh token goes into a cookie."""
    state = runtime(request)
    _check_origin(request, state)
    if not request.headers.get(CSRF_HEADER):
        raise _csrf_failure(state, "missing_header")
    form = await read_form(request)
    client = authenticate_client(request, form, state.settings, state.metrics)
    if client.confidential:
        raise ApiError(400, "unauthorized_client", "cookie mode is for public clients")
    username, password = required(form, "username"), required(form, "password")
    scope = parse_scope(form.get("scope"))
    pair = await password_login(
        state, username, password, scope, session_client(request, state, client.client_id)
    )
    return _respond(state, pair)


async def cookie_refresh_endpoint(request: Request) -> Response:
    """``POST /cookie/refresh``: rotate the refresh cookie, answer a new access token."""
    state = runtime(request)
    token = _cookie_credentials(request, state)
    try:
        # The client is read before verification only to name the one the token must be
        # bound to: the service checks that binding on the verified claims, so a token
        # passes only if it really was issued to this public client.
        try:
            issued_to = jwt.inspect_unverified(token).claims.get("client_id")
        except TokenwardError:
            issued_to = None
        client_id = _public_client(state, issued_to)
        pair = await rotate(state, token, client_id=client_id, scope=None)
    except ApiError as exc:
        return _clear(state, exc.response())
    return _respond(state, pair)


async def cookie_logout_endpoint(request: Request) -> Response:
    """``POST /cookie/logout``: revoke the cookie's session and clear the cookies."""
    state = runtime(request)
    token = _cookie_credentials(request, state)
    try:
        claims = await state.verify_refresh(token)
    except InvalidTokenError:
        claims = None
    if claims is not None:
        try:
            _public_client(state, claims.get("client_id"))
        except ApiError as exc:
            return _clear(state, exc.response())
        sid = str(claims["sid"])
        if await state.tokens.revoke_session(sid, reason="logout"):
            state.metrics.revocations.inc("session", "logout")
        audit("logout", sub=claims.get("sub"), sid=sid, mode="cookie")
    return _clear(state, Response(status_code=204, headers=NO_STORE))
