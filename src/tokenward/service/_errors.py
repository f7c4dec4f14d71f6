"""Errors of the token service (they join the tree drawn in :mod:`tokenward.errors`).

::

    InvalidTokenError
    ├── InvalidTypeError
    │   └── WrongTokenTypeError   an access token used as a refresh token, or the reverse
    ├── SessionRevokedTokenError  the token's session or user was revoked (deny list)
    └── GrantError                a refresh token cannot be exchanged (OAuth invalid_grant)
        ├── RefreshReuseError     an old refresh token came back: the session is revoked
        ├── ClientMismatchError   the refresh token was issued to another client
        ├── UnknownSessionError   no such session, or a token it never issued
        ├── SessionExpiredError   the session passed its idle or absolute expiry
        └── SessionRevokedError   the session was revoked earlier
    TokenwardError
    ├── InvalidScopeError         a refresh asked for more than the session was granted
    └── AuthenticationError       a login failed
        ├── InvalidCredentialsError   wrong password, unknown or disabled user (one error)
        └── LoginThrottledError       too many failures; ``retry_after`` seconds to wait
"""

from __future__ import annotations

from tokenward.errors import InvalidTokenError, InvalidTypeError, TokenwardError

__all__ = [
    "AuthenticationError",
    "ClientMismatchError",
    "GrantError",
    "InvalidCredentialsError",
    "InvalidScopeError",
    "LoginThrottledError",
    "RefreshReuseError",
    "SessionExpiredError",
    "SessionRevokedError",
    "SessionRevokedTokenError",
    "UnknownSessionError",
    "WrongTokenTypeError",
]


class WrongTokenTypeError(InvalidTypeError):
    """The token is of the other kind (``token_type``/``typ``)."""

    code = "wrong_token_type"


class SessionRevokedTokenError(InvalidTokenError):
    """The access token belongs to a revoked session or user (seen on the deny list)."""

    code = "token_revoked"


class GrantError(InvalidTokenError):
    """A refresh token was refused by the store; OAuth's ``invalid_grant``."""

    code = "invalid_grant"


class RefreshReuseError(GrantError):
    """A superseded refresh token was presented: reuse detected, session revoked."""

    code = "refresh_reused"


class ClientMismatchError(GrantError):
    """The refresh token was issued to another client (RFC 6749 sec. 6)."""

    code = "client_mismatch"


class UnknownSessionError(GrantError):
    """The refresh token's session does not exist (or never issued this token)."""

    code = "session_unknown"


class SessionExpiredError(GrantError):
    """The session passed its idle or absolute expiry."""

    code = "session_expired"


class SessionRevokedError(GrantError):
    """The session was revoked before this refresh."""

    code = "session_revoked"


class AuthenticationError(TokenwardError):
    """A login attempt failed."""

    code = "authentication_failed"


class InvalidCredentialsError(AuthenticationError):
    """Wrong password, unknown user or disabled account: deliberately one error."""

    code = "invalid_credentials"


class LoginThrottledError(AuthenticationError):
    """Too many failed logins for this account or address; retry after ``retry_after`` s."""

    code = "login_throttled"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InvalidScopeError(TokenwardError):
    """A refresh asked for a scope the session was not granted, or a login for scopes
    none of which the user holds (OAuth ``invalid_scope``)."""

    code = "invalid_scope"
