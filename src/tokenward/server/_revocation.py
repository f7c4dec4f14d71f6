"""``POST /oauth/revoke`` (RFC 7009) and ``POST /oauth/introspect`` (RFC 7662).

Revocation. Both kinds of token are accepted, and both revoke the whole session they
belong to: a refresh token stands for the session, and revoking only an access token
while its session could mint another one at the next refresh would protect nothing
(sec. 2.1 lets the server revoke related tokens; we revoke the session, so its access
tokens are refused here at once and by verifiers as the revocation feed reaches them).
Unknown, malformed, expired or already revoked tokens get 200 as the RFC requires
(sec. 2.2): the caller wanted the token dead, and it is. A token issued to another
client is refused with ``unauthorized_client`` (sec. 2.1: the server verifies that the
token was issued to the client making the request).

Introspection is for confidential clients only (sec. 2.1: the endpoint must require
authorisation, so that token scanning is not possible). ``active`` is decided by the
token's signature and claims and by one store read: an access token is active while its
session is; a refresh token only while it is its session's current one. Inactive tokens
get ``{"active": false}`` and nothing else (sec. 2.2). ``token_type`` is ``Bearer`` for
access tokens (sec. 2.2 refers to RFC 6749 sec. 5.1); the extension member ``token_use``
says ``access`` or ``refresh``, so a resource server never mistakes one for the other.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from tokenward.errors import InvalidTokenError
from tokenward.server._audit import audit
from tokenward.server._clients import authenticate_client
from tokenward.server._http import NO_STORE, ApiError, json_response, read_form, required
from tokenward.server._state import Runtime, runtime

__all__ = ["identify", "introspect_endpoint", "revoke_endpoint"]

_INTROSPECTED = ("iss", "sub", "aud", "exp", "iat", "nbf", "jti", "sid", "client_id", "scope")


async def identify(state: Runtime, token: str, hint: str | None) -> tuple[str, dict[str, Any]]:
    """``("access" | "refresh", claims)`` for a token this server issued and still honours.

    Raises :class:`InvalidTokenError` for anything else. The hint only picks which kind
    is tried first (RFC 7009 sec. 2.1); both are tried.
    """
    first, second = ("refresh", "access") if hint == "refresh_token" else ("access", "refresh")
    try:
        return first, await _claims(state, token, first)
    except InvalidTokenError as exc:
        try:
            return second, await _claims(state, token, second)
        except InvalidTokenError:
            raise exc from None


async def _claims(state: Runtime, token: str, kind: str) -> dict[str, Any]:
    if kind == "access":
        return dict((await state.verify_access(token)).claims)
    return await state.verify_refresh(token)


async def revoke_endpoint(request: Request) -> Response:
    """``POST /oauth/revoke``."""
    state = runtime(request)
    form = await read_form(request)
    client = authenticate_client(request, form, state.settings, state.metrics)
    token = required(form, "token")
    try:
        kind, claims = await identify(state, token, form.get("token_type_hint"))
    except InvalidTokenError:
        return Response(status_code=200, headers=NO_STORE)
    issued_to = claims.get("client_id")
    if isinstance(issued_to, str) and issued_to != client.client_id:
        raise ApiError(400, "unauthorized_client", "the token was issued to another client")
    sid = str(claims["sid"])
    if await state.tokens.revoke_session(sid, reason=f"{kind}_token_revoked"):
        state.metrics.revocations.inc("session", "oauth_revoke")
    audit("token_revoked", sid=sid, token_use=kind, client_id=client.client_id)
    return Response(status_code=200, headers=NO_STORE)


async def introspect_endpoint(request: Request) -> Response:
    """``POST /oauth/introspect``."""
    state = runtime(request)
    form = await read_form(request)
    authenticate_client(request, form, state.settings, state.metrics, confidential_only=True)
    token = required(form, "token")
    try:
        kind, claims = await identify(state, token, form.get("token_type_hint"))
    except InvalidTokenError:
        return json_response({"active": False})
    session = await state.store.get_session(str(claims["sid"]))
    now = state.clock.now()
    active = session is not None and session.active(now)
    if active and kind == "refresh" and session is not None:
        active = claims.get("gen") == session.generation
    if not active:
        return json_response({"active": False})
    body: dict[str, Any] = {"active": True, "token_use": kind}
    if kind == "access":
        body["token_type"] = "Bearer"
    body.update((name, claims[name]) for name in _INTROSPECTED if name in claims)
    if body.get("scope") == "":
        del body["scope"]  # RFC 7662 sec. 2.2: a list of scope tokens, or nothing.
    if isinstance(claims.get("preferred_username"), str):
        body["username"] = claims["preferred_username"]
    elif isinstance(claims.get("ext"), dict) and "preferred_username" in claims["ext"]:
        body["username"] = claims["ext"]["preferred_username"]
    return json_response(body)
