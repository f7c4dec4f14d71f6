"""``POST /oauth/token`` (RFC 6749): the password and refresh_token grants.

Success is sec. 5.1 (``access_token``, ``token_type``, ``expires_in``, ``refresh_token``,
``scope``) with ``Cache-Control: no-store``; errors are sec. 5.2 JSON. Decisions:

* A wrong password, an unknown user and a disabled account get one answer,
  ``invalid_grant`` "invalid username or password" (the service makes them cost the same).
* Throttled logins get 429 with ``Retry-After`` and ``invalid_grant``: RFC 6749 has no
  code for "slow down" at this endpoint, and 429 tells any HTTP client what happened.
* ``scope`` on a password grant picks among the user's scopes; scopes the user does not
  hold are left out (sec. 3.3 lets the server grant less), and the response's ``scope``
  says what was granted. A malformed scope, or one of which the user holds nothing, is
  ``invalid_scope``. A user with no scopes who asks for none gets a grant with no
  ``scope`` member (the grammar of sec. 3.3 has no empty value).
* ``scope`` on a refresh may only narrow (sec. 6): the new access token gets the narrower
  scope, the refresh token keeps the original grant. Asking for more is ``invalid_scope``
  and leaves the refresh token untouched.
* A refresh token issued to another client is ``invalid_grant`` (sec. 6: "validate the
  refresh token ... was issued to the authenticated client").

The access token carries ``preferred_username`` (an OpenID Connect claim name), so that
``/userinfo`` answers from the token with no store read.
"""

from __future__ import annotations

import logging
import math
import re

from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from tokenward.errors import InvalidTokenError
from tokenward.jose._json import dumps
from tokenward.server._audit import audit
from tokenward.server._clients import authenticate_client, client_address
from tokenward.server._http import ApiError, read_form, required, send_json
from tokenward.server._state import Runtime, runtime
from tokenward.service import (
    Client,
    ClientMismatchError,
    InvalidCredentialsError,
    InvalidScopeError,
    LoginThrottledError,
    RefreshReuseError,
    TokenPair,
)

__all__ = ["TokenEndpoint", "parse_scope", "password_login", "rotate", "token_json"]

_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")  # RFC 6749 sec. 3.3
_MAX_USER_AGENT = 256
# ASCII octets that a JSON string holds as they are map to themselves; the ones JSON
# escapes (RFC 8259 sec. 7: the quotation mark, the reverse solidus and U+0000-U+001F)
# and anything past ASCII map to the quotation mark.
_AS_IS = bytes(c if 0x20 <= c < 0x80 and c not in b'"\\' else 0x22 for c in range(256))


def parse_scope(text: str | None) -> tuple[str, ...] | None:
    """A requested ``scope`` as a tuple of scope tokens, None if absent; or ``invalid_scope``."""
    if text is None:
        return None
    items = text.split(" ")
    if not all(_SCOPE_TOKEN.fullmatch(s) for s in items):
        raise ApiError(400, "invalid_scope", "the scope is malformed")
    return tuple(dict.fromkeys(items))


def session_client(request: Request, state: Runtime, client_id: str) -> Client:
    """The session metadata of this request: client id, user agent and address."""
    agent = request.headers.get("user-agent")
    return Client(
        client_id=client_id,
        user_agent=agent[:_MAX_USER_AGENT] if agent else None,
        ip=client_address(request, state.settings.trusted_proxies),
    )


async def password_login(
    state: Runtime, username: str, password: str, scope: tuple[str, ...] | None, client: Client
) -> TokenPair:
    """Authenticate under the throttle and open a session; raise :class:`ApiError`."""
    try:
        pair = await state.users.login(username, password, scope=scope, client=client)
    except LoginThrottledError as exc:
        state.metrics.logins.inc("throttled")
        retry = str(max(1, math.ceil(exc.retry_after)))
        raise ApiError(
            429, "invalid_grant", "too many failed logins; retry later",
            headers={"Retry-After": retry},
        ) from None  # fmt: skip
    except InvalidScopeError:
        raise ApiError(
            400, "invalid_scope", "the user holds none of the requested scopes"
        ) from None
    except InvalidCredentialsError:
        state.metrics.logins.inc("failure")
        audit("login_rejected", level=logging.WARNING, client_id=client.client_id, ip=client.ip)
        raise ApiError(400, "invalid_grant", "invalid username or password") from None
    state.metrics.logins.inc("success")
    audit("login_succeeded", sid=pair.sid, client_id=client.client_id, ip=client.ip)
    return pair


async def rotate(
    state: Runtime, refresh_token: str, *, client_id: str | None, scope: tuple[str, ...] | None
) -> TokenPair:
    """Exchange a refresh token (checks first, then one atomic store call); or raise."""
    try:
        pair = await state.refresh(refresh_token, scope=scope, client_id=client_id)
    except ClientMismatchError:
        state.metrics.refreshes.inc("invalid")
        raise ApiError(
            400, "invalid_grant", "the refresh token was issued to another client"
        ) from None
    except InvalidScopeError:
        raise ApiError(400, "invalid_scope", "a refresh may only narrow the scope") from None
    except RefreshReuseError:
        state.metrics.refreshes.inc("reused")
        state.metrics.reuse_detected.inc()
        state.metrics.revocations.inc("session", "reuse")
        raise ApiError(400, "invalid_grant", "the refresh token is not acceptable") from None
    except InvalidTokenError:
        state.metrics.refreshes.inc("invalid")
        raise ApiError(400, "invalid_grant", "the refresh token is not acceptable") from None
    state.metrics.refreshes.inc("success")
    return pair


def token_body(pair: TokenPair, *, with_refresh: bool = True) -> dict[str, object]:
    """The RFC 6749 sec. 5.1 response members."""
    body: dict[str, object] = {
        "access_token": pair.access_token,
        "token_type": pair.token_type,
        "expires_in": pair.expires_in,
    }
    if pair.scope:  # An empty grant has no sec. 3.3 value: the member is left out.
        body["scope"] = pair.scope
    if with_refresh:
        body["refresh_token"] = pair.refresh_token
    return body


def token_json(pair: TokenPair) -> bytes:
    """The JSON of :func:`token_body` (with the refresh token), as ``dumps`` renders it.

    The tokens are compact JWS (base64url and dots) and fill most of the document; the
    JSON encoder would look at each of their characters for one to escape. When no member
    needs escaping (checked with one table lookup per octet), the document is written
    out directly; otherwise the encoder renders it.
    """
    access, refresh, token_type, scope = (
        pair.access_token, pair.refresh_token, pair.token_type, pair.scope
    )  # fmt: skip
    text = access + refresh + token_type + scope
    if (
        type(pair.expires_in) is int
        and scope
        and text.isascii()
        and b'"' not in text.encode().translate(_AS_IS)
    ):
        return (
            f'{{"access_token":"{access}","token_type":"{token_type}",'
            f'"expires_in":{pair.expires_in:d},"scope":"{scope}","refresh_token":"{refresh}"}}'
        ).encode()
    return dumps(token_body(pair))


async def _exchange(request: Request) -> TokenPair:
    """Run the grant the form asks for; raise :class:`ApiError` for anything else."""
    state = runtime(request)
    form = await read_form(request)
    grant_type = required(form, "grant_type")
    if grant_type not in ("password", "refresh_token"):
        raise ApiError(400, "unsupported_grant_type", "use password or refresh_token")
    client = authenticate_client(request, form, state.settings, state.metrics)
    scope = parse_scope(form.get("scope"))
    if grant_type == "password":
        username, password = required(form, "username"), required(form, "password")
        return await password_login(
            state, username, password, scope, session_client(request, state, client.client_id)
        )
    return await rotate(
        state, required(form, "refresh_token"), client_id=client.client_id, scope=scope
    )


class TokenEndpoint:
    """``POST /oauth/token``, as an ASGI application.

    Starlette runs a request handler inside one more exception-handling layer and renders
    a response object; this endpoint sends its two ASGI messages itself. Errors still raise
    :class:`ApiError` (or a store error) to the application's handlers, which answer as
    for any endpoint.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        pair = await _exchange(Request(scope, receive))
        await send_json(send, token_json(pair))
