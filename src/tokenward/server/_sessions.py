"""The caller's own account and sessions, authenticated with a bearer access token.

* ``GET /userinfo``: answered from the verified token alone (no store read).
* ``GET /sessions``: the caller's active sessions (device, address, times), marking the
  one the presented token belongs to as ``current``.
* ``DELETE /sessions/{sid}``: end one of the caller's sessions; any other ``sid``
  (someone else's, revoked, expired or made up) is 404, so ids cannot be probed.
* ``POST /logout``: end the current session. ``POST /logout/all``: end every session of
  the caller, this one included.

Bearer headers are not sent by browsers on their own, so these endpoints need no CSRF
protection (cookie mode has its own logout; see ``docs/cookie-mode.md``).
"""

from __future__ import annotations

import math
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from tokenward.server._audit import audit
from tokenward.server._bearer import authenticate
from tokenward.server._http import NO_STORE, ApiError, json_response
from tokenward.server._state import runtime
from tokenward.stores import SessionRecord

__all__ = [
    "delete_session_endpoint",
    "logout_all_endpoint",
    "logout_endpoint",
    "sessions_endpoint",
    "userinfo_endpoint",
]

_MAX_SID = 128


def _session(record: SessionRecord, current_sid: str) -> dict[str, Any]:
    return {
        "sid": record.sid,
        "client_id": record.client_id,
        "user_agent": record.user_agent,
        "ip": record.ip,
        "created_at": math.floor(record.created_at),
        "last_used_at": math.floor(record.last_used_at),
        "expires_at": math.floor(min(record.idle_expires_at, record.absolute_expires_at)),
        "current": record.sid == current_sid,
    }


async def userinfo_endpoint(request: Request) -> Response:
    """``GET /userinfo``: subject, username and scopes of the token's user."""
    claims = await authenticate(request)
    username = claims.claims.get("preferred_username")
    return json_response(
        {
            "sub": claims.sub,
            "username": username if isinstance(username, str) else None,
            "scopes": sorted(claims.scopes),
        }
    )


async def sessions_endpoint(request: Request) -> Response:
    """``GET /sessions``: the caller's active sessions, oldest first."""
    claims = await authenticate(request)
    records = await runtime(request).tokens.list_sessions(claims.sub)
    return json_response({"sessions": [_session(r, claims.sid) for r in records]})


async def delete_session_endpoint(request: Request) -> Response:
    """``DELETE /sessions/{sid}``: revoke one of the caller's own sessions."""
    claims = await authenticate(request)
    state = runtime(request)
    sid = request.path_params["sid"]
    record = await state.store.get_session(sid) if len(sid) <= _MAX_SID else None
    if record is None or record.sub != claims.sub or not record.active(state.clock.now()):
        raise ApiError(404, "not_found", "no such session")
    if await state.tokens.revoke_session(sid, reason="user_ended"):
        state.metrics.revocations.inc("session", "user")
    audit("session_ended_by_user", sub=claims.sub, sid=sid, current=sid == claims.sid)
    return Response(status_code=204, headers=NO_STORE)


async def logout_endpoint(request: Request) -> Response:
    """``POST /logout``: revoke the session the presented token belongs to."""
    claims = await authenticate(request)
    state = runtime(request)
    if await state.tokens.revoke_session(claims.sid, reason="logout"):
        state.metrics.revocations.inc("session", "logout")
    audit("logout", sub=claims.sub, sid=claims.sid)
    return Response(status_code=204, headers=NO_STORE)


async def logout_all_endpoint(request: Request) -> Response:
    """``POST /logout/all``: revoke every session of the caller."""
    claims = await authenticate(request)
    state = runtime(request)
    count = await state.tokens.revoke_user(claims.sub, reason="logout_all")
    state.metrics.revocations.inc("user", "logout")
    audit("logout_all", sub=claims.sub, sessions=count)
    return json_response({"revoked": count})
