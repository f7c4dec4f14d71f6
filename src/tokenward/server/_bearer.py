"""Bearer token authentication for the session and admin endpoints (RFC 6750).

* No ``Authorization: Bearer`` header: 401 with a bare challenge, no error code
  (sec. 3.1: a request that lacks authentication gets no error details).
* A malformed header (``Bearer`` with no token, or junk after it): 400
  ``invalid_request``.
* A token that does not verify (bad signature, expired, revoked, wrong type): 401
  ``invalid_token``. The description says expired or revoked when it is, since a client
  reacts differently (refresh, or log in again); other reasons stay generic.
* A valid token without the needed scope: 403 ``insufficient_scope`` with ``scope``.

Tokens in the query string or the form body (sec. 2.2, 2.3) are not accepted: they end
up in logs and caches.
"""

from __future__ import annotations

import re

from starlette.requests import Request

from tokenward.errors import InvalidTokenError
from tokenward.server._http import ApiError
from tokenward.server._state import runtime
from tokenward.service import AccessClaims

__all__ = ["authenticate", "bearer_error", "require_scope"]

_TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_DESCRIPTIONS = {
    "token_expired": "the access token expired",
    "token_revoked": "the access token was revoked",
}


def bearer_error(
    status: int, error: str | None, description: str | None = None, *, scope: str | None = None
) -> ApiError:
    """An RFC 6750 error with its ``WWW-Authenticate: Bearer`` challenge."""
    params = ['realm="tokenward"']
    if error is not None:
        params.append(f'error="{error}"')
        # Only with an error code: a request without credentials gets a bare challenge
        # (sec. 3.1); the description stays in the JSON body.
        if description is not None:
            params.append(f'error_description="{description}"')
    if scope is not None:
        params.append(f'scope="{scope}"')
    challenge = {"WWW-Authenticate": "Bearer " + ", ".join(params)}
    return ApiError(status, error or "unauthorized", description, headers=challenge)


def _token(request: Request) -> str:
    header = request.headers.getlist("authorization")
    if not header:
        raise bearer_error(401, None, "bearer authentication required")
    if len(header) > 1:
        raise bearer_error(400, "invalid_request", "more than one Authorization header")
    scheme, _, token = header[0].partition(" ")
    if scheme.lower() != "bearer":
        raise bearer_error(401, None, "bearer authentication required")
    token = token.strip()
    if not _TOKEN68.fullmatch(token):
        raise bearer_error(400, "invalid_request", "malformed bearer token")
    return token


async def authenticate(request: Request) -> AccessClaims:
    """The verified claims of the request's bearer token, or an RFC 6750 error."""
    token = _token(request)
    state = runtime(request)
    try:
        return await state.verify_access(token)
    except InvalidTokenError as exc:
        state.metrics.verification_failures.inc(exc.code)
        description = _DESCRIPTIONS.get(exc.code, "the access token is invalid")
        raise bearer_error(401, "invalid_token", description) from None


def require_scope(claims: AccessClaims, scope: str) -> None:
    """Refuse with 403 ``insufficient_scope`` unless the token carries ``scope``."""
    if scope not in claims.scopes:
        raise bearer_error(403, "insufficient_scope", f"the {scope} scope is required", scope=scope)
