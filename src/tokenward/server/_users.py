"""User administration (``admin`` scope) and optional self-registration.

* ``POST /admin/users`` ``{"username", "password", "scopes": [...], "admin": false}``
* ``GET /admin/users``
* ``POST /admin/users/{username}/disable``: also revokes the user's sessions.
* ``POST /admin/users/{username}/password`` ``{"password"}``: also revokes the user's
  sessions (a password change means the old one may be known to someone else).
* ``POST /register`` ``{"username", "password"}``: only when ``registration`` is enabled
  (404 otherwise, as if the route did not exist); new users get no scopes.

The ``admin`` scope is checked in the access token, so a demoted admin keeps it until
that token expires (``access_lifetime``); disabling the account revokes it at once.
Bodies are JSON. Password hashes never leave the server.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from tokenward.errors import ConfigurationError
from tokenward.server._audit import audit
from tokenward.server._bearer import authenticate, require_scope
from tokenward.server._http import ApiError, json_response, read_json, text_field
from tokenward.server._state import Runtime, runtime
from tokenward.service import AccessClaims
from tokenward.stores import UserExistsError, UserRecord

__all__ = [
    "create_user_endpoint",
    "disable_user_endpoint",
    "list_users_endpoint",
    "register_endpoint",
    "set_password_endpoint",
]


def _user(record: UserRecord) -> dict[str, Any]:
    return {
        "sub": record.sub,
        "username": record.username,
        "scopes": list(record.scopes),
        "admin": record.admin,
        "disabled": record.disabled,
        "created_at": int(record.created_at),
        "updated_at": int(record.updated_at),
    }


async def _admin(request: Request) -> tuple[Runtime, AccessClaims]:
    claims = await authenticate(request)
    require_scope(claims, "admin")
    return runtime(request), claims


async def _create(
    state: Runtime, username: str, password: str, scopes: list[str], admin: bool
) -> UserRecord:
    try:
        return await state.users.create_user(username, password, scopes=scopes, admin=admin)
    except UserExistsError:
        raise ApiError(409, "user_exists", "that username is taken") from None
    except ConfigurationError as exc:
        # The service's messages name the rule broken (length, characters), not the value.
        raise ApiError(400, "invalid_request", exc.message) from None


async def create_user_endpoint(request: Request) -> Response:
    """``POST /admin/users``: create an account."""
    state, claims = await _admin(request)
    body = await read_json(request)
    username = text_field(body, "username") or ""
    password = text_field(body, "password") or ""
    scopes = body.get("scopes", [])
    admin = body.get("admin", False)
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise ApiError(400, "invalid_request", "'scopes' must be a list of strings")
    if not isinstance(admin, bool):
        raise ApiError(400, "invalid_request", "'admin' must be a boolean")
    user = await _create(state, username, password, scopes, admin)
    audit("admin_user_created", by=claims.sub, sub=user.sub, admin=admin)
    return json_response(_user(user), 201)


async def list_users_endpoint(request: Request) -> Response:
    """``GET /admin/users``: every account, by username."""
    state, _ = await _admin(request)
    return json_response({"users": [_user(u) for u in await state.users.list_users()]})


async def _existing(state: Runtime, request: Request) -> UserRecord:
    user = await state.users.get_user(request.path_params["username"])
    if user is None:
        raise ApiError(404, "not_found", "no such user")
    return user


async def disable_user_endpoint(request: Request) -> Response:
    """``POST /admin/users/{username}/disable``: disable an account, end its sessions."""
    state, claims = await _admin(request)
    user = await _existing(state, request)
    count = await state.users.set_disabled(user.username, True)
    state.metrics.revocations.inc("user", "disabled")
    audit("admin_user_disabled", by=claims.sub, sub=user.sub, sessions=count)
    return json_response({"username": user.username, "disabled": True, "revoked": count})


async def set_password_endpoint(request: Request) -> Response:
    """``POST /admin/users/{username}/password``: set a password, end the user's sessions."""
    state, claims = await _admin(request)
    body = await read_json(request)
    password = text_field(body, "password") or ""
    user = await _existing(state, request)
    try:
        count = await state.users.set_password(user.username, password)
    except ConfigurationError as exc:
        raise ApiError(400, "invalid_request", exc.message) from None
    state.metrics.revocations.inc("user", "password_changed")
    audit("admin_password_set", by=claims.sub, sub=user.sub, sessions=count)
    return json_response({"username": user.username, "revoked": count})


async def register_endpoint(request: Request) -> Response:
    """``POST /register``: self-registration, when the configuration enables it."""
    state = runtime(request)
    if not state.settings.registration:
        raise ApiError(404, "not_found", "registration is not enabled")
    body = await read_json(request)
    username = text_field(body, "username") or ""
    password = text_field(body, "password") or ""
    user = await _create(state, username, password, [], False)
    audit("user_registered", sub=user.sub)
    return json_response({"sub": user.sub, "username": user.username}, 201)
