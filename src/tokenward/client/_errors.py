"""Errors of the HTTP client auth (``tokenward.client``).

They join the tree of :mod:`tokenward.errors` under one branch::

    TokenwardError
    └── ClientError                       the client side of the token exchange failed
        ├── LoginRequiredError            no usable token and nothing to log in with
        ├── TokenEndpointError            the token endpoint refused or answered badly
        │   └── LoginFailedError          the password grant was refused (or throttled)
        └── TokenStorageError             the token storage cannot be read or written

Messages name the status, the RFC 6749 error code and what to do; they never contain a
token, a password or a client secret.
"""

from __future__ import annotations

from tokenward.errors import TokenwardError

__all__ = [
    "ClientError",
    "LoginFailedError",
    "LoginRequiredError",
    "TokenEndpointError",
    "TokenStorageError",
]

_MAX_DESCRIPTION = 200


class ClientError(TokenwardError):
    """Root of the client's errors."""

    code = "client_error"


class LoginRequiredError(ClientError):
    """There is no usable token and no password to log in with: the user must log in.

    Raised when the stored refresh token is refused (expired, revoked, or reuse was
    detected and the session ended) and the auth was given no username and password,
    or when there was never a token to begin with.
    """

    code = "login_required"


class TokenEndpointError(ClientError):
    """The token endpoint refused the request or gave an answer that is not RFC 6749.

    ``status`` is the HTTP status, ``error`` the RFC 6749 sec. 5.2 code when the body had
    one (``invalid_client``, ``temporarily_unavailable`` ...), ``description`` the
    server's ``error_description`` (shortened; tokenward's are fixed texts).
    """

    code = "token_endpoint_error"

    def __init__(
        self, message: str, *, status: int, error: str | None, description: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.description = _printable(description)


class LoginFailedError(TokenEndpointError):
    """The password grant was refused: wrong credentials, a disabled account, or too
    many failures (status 429; ``retry_after`` then holds the server's ``Retry-After``)."""

    code = "login_failed"

    def __init__(
        self,
        message: str,
        *,
        status: int,
        error: str | None,
        description: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, error=error, description=description)
        self.retry_after = retry_after


class TokenStorageError(ClientError):
    """The token storage refused to load or save (a symbolic link, loose permissions,
    a file that is not a token file)."""

    code = "token_storage_error"


def _printable(text: str | None) -> str | None:
    if text is None:
        return None
    return "".join(c if c.isprintable() else "?" for c in text[:_MAX_DESCRIPTION])
