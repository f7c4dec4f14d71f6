"""OpenAPI components: the JSON schemas of bodies and the shared error responses.

Kept apart from the paths (``_openapi.py``) so each file reads as one thing: this one is
the data model, that one the operations. Written by hand (Starlette has no generator,
and a hand-written document says exactly what the server promises).
"""

from __future__ import annotations

from typing import Any

__all__ = ["COMPONENTS", "ref", "responses"]

_USERNAME = {"type": "string", "pattern": "^[A-Za-z0-9._@+-]{1,64}$"}
_PASSWORD = {"type": "string", "minLength": 8, "maxLength": 1024}
_SCOPE_TOKEN = {"type": "string", "pattern": "^[\\x21\\x23-\\x5b\\x5d-\\x7e]+$"}
_TIME = {"type": "integer", "description": "Unix time, seconds"}
_NULLABLE_STRING = {"type": "string", "nullable": True}


def ref(name: str) -> dict[str, str]:
    """A ``$ref`` to a schema component."""
    return {"$ref": f"#/components/schemas/{name}"}


_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {"type": "string", "description": "A stable error code."},
            "error_description": {"type": "string"},
        },
    },
    "TokenForm": {
        "type": "object",
        "required": ["grant_type"],
        "properties": {
            "grant_type": {"type": "string", "enum": ["password", "refresh_token"]},
            "username": {"type": "string"},
            "password": {"type": "string"},
            "refresh_token": {"type": "string"},
            "scope": {"type": "string", "description": "Space-separated scope tokens."},
            "client_id": {"type": "string", "description": "Public clients; others use Basic."},
        },
    },
    "TokenResponse": {
        "type": "object",
        "required": ["access_token", "token_type", "expires_in", "refresh_token"],
        "properties": {
            "access_token": {"type": "string"},
            "token_type": {"type": "string", "enum": ["Bearer"]},
            "expires_in": {"type": "integer"},
            "refresh_token": {"type": "string"},
            "scope": {"type": "string", "description": "Absent when no scope was granted."},
        },
    },
    "TokenHintForm": {
        "type": "object",
        "required": ["token"],
        "properties": {
            "token": {"type": "string"},
            "token_type_hint": {"type": "string", "enum": ["access_token", "refresh_token"]},
            "client_id": {"type": "string"},
        },
    },
    "Introspection": {
        "type": "object",
        "required": ["active"],
        "properties": {
            "active": {"type": "boolean"},
            "token_use": {"type": "string", "enum": ["access", "refresh"]},
            "token_type": {"type": "string"},
            "scope": {"type": "string"},
            "client_id": {"type": "string"},
            "username": {"type": "string"},
            "sub": {"type": "string"},
            "sid": {"type": "string"},
            "iss": {"type": "string"},
            "jti": {"type": "string"},
            "exp": {"type": "integer"},
            "iat": {"type": "integer"},
            "nbf": {"type": "integer"},
        },
    },
    "JWKS": {
        "type": "object",
        "required": ["keys"],
        "properties": {"keys": {"type": "array", "items": {"type": "object"}}},
    },
    "Metadata": {
        "type": "object",
        "required": ["issuer", "token_endpoint", "jwks_uri", "response_types_supported"],
        "properties": {
            "issuer": {"type": "string"},
            "token_endpoint": {"type": "string"},
            "revocation_endpoint": {"type": "string"},
            "introspection_endpoint": {"type": "string"},
            "jwks_uri": {"type": "string"},
            "grant_types_supported": {"type": "array", "items": {"type": "string"}},
            "response_types_supported": {"type": "array", "items": {"type": "string"}},
        },
    },
    "UserInfo": {
        "type": "object",
        "required": ["sub", "username", "scopes"],
        "properties": {
            "sub": {"type": "string"},
            "username": _NULLABLE_STRING,
            "scopes": {"type": "array", "items": {"type": "string"}},
        },
    },
    "Session": {
        "type": "object",
        "required": ["sid", "created_at", "last_used_at", "expires_at", "current"],
        "properties": {
            "sid": {"type": "string"},
            "client_id": _NULLABLE_STRING,
            "user_agent": _NULLABLE_STRING,
            "ip": _NULLABLE_STRING,
            "created_at": _TIME,
            "last_used_at": _TIME,
            "expires_at": _TIME,
            "current": {"type": "boolean"},
        },
    },
    "SessionList": {
        "type": "object",
        "required": ["sessions"],
        "properties": {"sessions": {"type": "array", "items": ref("Session")}},
    },
    "Revoked": {
        "type": "object",
        "required": ["revoked"],
        "properties": {"revoked": {"type": "integer", "minimum": 0}},
    },
    "NewUser": {
        "type": "object",
        "required": ["username", "password"],
        "properties": {
            "username": _USERNAME,
            "password": _PASSWORD,
            "scopes": {"type": "array", "items": _SCOPE_TOKEN},
            "admin": {"type": "boolean"},
        },
    },
    "User": {
        "type": "object",
        "required": ["sub", "username", "scopes", "admin", "disabled", "created_at"],
        "properties": {
            "sub": {"type": "string"},
            "username": {"type": "string"},
            "scopes": {"type": "array", "items": {"type": "string"}},
            "admin": {"type": "boolean"},
            "disabled": {"type": "boolean"},
            "created_at": _TIME,
            "updated_at": _TIME,
        },
    },
    "UserList": {
        "type": "object",
        "required": ["users"],
        "properties": {"users": {"type": "array", "items": ref("User")}},
    },
    "UserChange": {
        "type": "object",
        "required": ["username", "revoked"],
        "properties": {
            "username": {"type": "string"},
            "disabled": {"type": "boolean"},
            "revoked": {"type": "integer", "minimum": 0},
        },
    },
    "NewPassword": {
        "type": "object",
        "required": ["password"],
        "properties": {"password": _PASSWORD},
    },
    "Registration": {
        "type": "object",
        "required": ["username", "password"],
        "properties": {"username": _USERNAME, "password": _PASSWORD},
    },
    "Registered": {
        "type": "object",
        "required": ["sub", "username"],
        "properties": {"sub": {"type": "string"}, "username": {"type": "string"}},
    },
    "CookieLoginForm": {
        "type": "object",
        "required": ["username", "password", "client_id"],
        "properties": {
            "username": {"type": "string"},
            "password": {"type": "string"},
            "client_id": {"type": "string"},
            "scope": {"type": "string"},
        },
    },
    "CookieTokenResponse": {
        "type": "object",
        "required": ["access_token", "token_type", "expires_in", "csrf_token"],
        "properties": {
            "access_token": {"type": "string"},
            "token_type": {"type": "string", "enum": ["Bearer"]},
            "expires_in": {"type": "integer"},
            "scope": {"type": "string", "description": "Absent when no scope was granted."},
            "csrf_token": {"type": "string", "description": "Send back as X-CSRF-Token."},
        },
    },
}

_ERROR_CONTENT = {"application/json": {"schema": ref("Error")}}
_RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds."}}
_CHALLENGE = {"WWW-Authenticate": {"schema": {"type": "string"}}}
_ERRORS: dict[int, dict[str, Any]] = {
    400: {"description": "Invalid request (RFC 6749 sec. 5.2 / RFC 6750 error codes)."},
    401: {"description": "Authentication required or failed.", "headers": _CHALLENGE},
    403: {"description": "Insufficient scope, or a failed CSRF check."},
    404: {"description": "Not found."},
    409: {"description": "The username is taken."},
    413: {"description": "The request body is too large."},
    429: {"description": "Too many failed logins.", "headers": _RETRY_AFTER},
    503: {"description": "The store is unavailable; retry later.", "headers": _RETRY_AFTER},
}


def responses(ok: dict[str, Any], *statuses: int) -> dict[str, Any]:
    """An operation's responses: its success responses plus these error statuses."""
    out = dict(ok)
    for status in (*statuses, 503):
        out[str(status)] = {**_ERRORS[status], "content": _ERROR_CONTENT}
    return out


COMPONENTS: dict[str, Any] = {
    "schemas": _SCHEMAS,
    "securitySchemes": {
        # The access tokens of the bearer endpoints come from the password grant; saying so
        # lets Swagger UI log in, and tells tools that /oauth/token issues credentials.
        "oauth2": {
            "type": "oauth2",
            "flows": {
                "password": {
                    "tokenUrl": "/oauth/token",
                    "refreshUrl": "/oauth/token",
                    "scopes": {"admin": "User administration"},
                }
            },
        },
        "clientBasic": {
            "type": "http",
            "scheme": "basic",
            "description": "Confidential OAuth clients (client_secret_basic).",
        },
    },
}
