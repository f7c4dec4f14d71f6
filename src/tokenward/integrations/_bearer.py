"""RFC 6750 bearer credentials and challenges, shared by every integration.

No framework is imported here. The rules, the same in every integration:

* No ``Authorization`` header, or one with another scheme (``Basic ...``): 401 with a
  bare challenge, ``WWW-Authenticate: Bearer realm="..."``. RFC 6750 sec. 3.1: a request
  that lacks any authentication information gets no error code.
* A malformed request (RFC 6750 sec. 3.1 ``invalid_request``, status 400): more than one
  ``Authorization`` header (one request carries one credential, RFC 7235 sec. 4.2),
  ``Bearer`` with no token, or a token that is not ``token68`` (RFC 7235 sec. 2.1).
* A token that does not verify (bad signature, expired, revoked, wrong audience, ...):
  401 ``invalid_token``. The description says *expired* or *revoked* when it is, because
  a client reacts differently (refresh, or log in again); every other reason stays generic.
* A valid token without a required scope: 403 ``insufficient_scope`` with the ``scope``
  attribute naming what the route requires (RFC 6750 sec. 3).

Bodies are generic JSON, ``{"error": "<code>"}`` with ``Cache-Control: no-store``. The
precise reason (the error's stable ``code`` and message) goes to the log, at INFO on the
``tokenward.integrations`` logger, and never the token itself.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from tokenward.errors import ConfigurationError, InvalidTokenError, KeyNotFoundError
from tokenward.service import (
    AccessClaims,
    InsufficientScopeError,
    KeyRingKeys,
    RemoteJWKS,
    StaticKeys,
    Verifier,
)

__all__ = [
    "Challenges",
    "InvalidRequestError",
    "Refusal",
    "bearer_token",
    "header_token",
    "is_token68",
    "needs_async",
    "require_http_client",
    "verify",
]

_log = logging.getLogger("tokenward.integrations")

# RFC 7235 sec. 2.1: token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_TOKEN68 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/"
_DESCRIPTIONS = {
    "token_expired": "the access token expired",
    "token_revoked": "the access token was revoked",
}
_GENERIC = "the access token is invalid"
_MAX_CACHED_SCOPE_SETS = 256


class InvalidRequestError(Exception):
    """The request's credentials are malformed (answered 400 ``invalid_request``)."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """One refusal, computed once: status, RFC 6750 error, challenge and JSON body."""

    status: int
    error: str
    """The body's ``error`` (``unauthorized`` when no credentials were sent)."""
    challenge: str
    """The ``WWW-Authenticate`` value."""
    body: bytes
    raw_headers: tuple[tuple[bytes, bytes], ...]
    """ASGI response headers: content type and length, ``no-store``, the challenge."""

    @property
    def headers(self) -> dict[str, str]:
        """The headers for a framework's response object (a fresh dict each time)."""
        return {"WWW-Authenticate": self.challenge, "Cache-Control": "no-store"}


def _quoted(name: str, value: object) -> str:
    # Printable ASCII only: a header value past ASCII is obs-text (RFC 9110 sec. 5.5),
    # which clients decode as they please (Latin-1, UTF-8, or an error), and past Latin-1
    # it cannot be sent at all. Refused when the app is configured, not on a request.
    if (
        isinstance(value, str)
        and value.isascii()
        and value.isprintable()
        and '"' not in value
        and "\\" not in value
    ):
        return f'{name}="{value}"'
    raise ConfigurationError(
        f"the {name} of a challenge must be printable ASCII without quotes, got {value!r}"
    )


class Challenges:
    """The refusals of one realm, built once so a refused request allocates little.

    >>> challenges = Challenges("api")
    >>> challenges.missing.challenge
    'Bearer realm="api"'
    >>> challenges.invalid_request.status
    400
    """

    __slots__ = ("_realm", "_scopes", "_tokens", "invalid_request", "missing")

    def __init__(self, realm: str = "tokenward") -> None:
        self._realm = _quoted("realm", realm)
        self.missing = self._make(401, None, None)
        self.invalid_request = self._make(
            400, "invalid_request", "the Authorization header is malformed"
        )
        self._tokens = {
            code: self._make(401, "invalid_token", text) for code, text in _DESCRIPTIONS.items()
        }
        self._tokens[""] = self._make(401, "invalid_token", _GENERIC)
        self._scopes: dict[frozenset[str], Refusal] = {}

    def _make(
        self, status: int, error: str | None, description: str | None, scope: str | None = None
    ) -> Refusal:
        params = [self._realm]
        if error is not None:
            params.append(_quoted("error", error))
        if description is not None:
            params.append(_quoted("error_description", description))
        if scope is not None:
            params.append(_quoted("scope", scope))
        challenge = "Bearer " + ", ".join(params)
        code = error or "unauthorized"
        body = b'{"error":"' + code.encode() + b'"}'
        raw = (
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-store"),
            (b"www-authenticate", challenge.encode("latin-1")),
        )
        return Refusal(status, code, challenge, body, raw)

    def for_error(
        self,
        exc: InvalidTokenError | InsufficientScopeError,
        token: bytes,
        *,
        from_header: bool = True,
    ) -> Refusal:
        """The refusal for a verification error; logs the precise reason (not the token).

        A refused ``token`` from the ``Authorization`` header that is not even ``token68``
        (spaces, commas: two credentials joined by a proxy) makes the request malformed:
        400 ``invalid_request``. A token read from a cookie (``from_header=False``) is
        never that: a stale or mangled cookie is an invalid token, 401 ``invalid_token``.
        """
        _log.info("bearer token refused (%s): %s", exc.code, exc.message)
        if isinstance(exc, InsufficientScopeError):
            return self.insufficient_scope(exc.required)
        if from_header and not is_token68(token):
            return self.invalid_request
        return self._tokens.get(exc.code) or self._tokens[""]

    def scope_refusal(self, claims: AccessClaims, required: Iterable[str]) -> Refusal | None:
        """None when ``claims`` hold every ``required`` scope; else the 403, logged."""
        wanted = frozenset(required)
        if claims.scopes.issuperset(wanted):
            return None
        missing = wanted - claims.scopes
        error = InsufficientScopeError(
            f"the token lacks the scopes {sorted(missing)}", required=wanted, missing=missing
        )
        return self.for_error(error, b"")

    def insufficient_scope(self, required: Iterable[str]) -> Refusal:
        """403 ``insufficient_scope`` naming the scopes the route requires."""
        wanted = frozenset(required)
        refusal = self._scopes.get(wanted)
        if refusal is None:
            refusal = self._make(
                403,
                "insufficient_scope",
                "the access token lacks a required scope",
                " ".join(sorted(wanted)),
            )
            # Scope sets come from route definitions, not from clients; the bound only
            # guards against an app that builds them dynamically.
            if len(self._scopes) < _MAX_CACHED_SCOPE_SETS:
                self._scopes[wanted] = refusal
        return refusal


def bearer_token(value: bytes) -> bytes | None:
    """The token of one ``Authorization`` value; None when its scheme is not Bearer.

    The scheme is case-insensitive and separated from the token by one or more spaces
    (RFC 7235 sec. 2.1). Raises :class:`InvalidRequestError` for ``Bearer`` with no
    token. The token's characters are checked only when it fails to verify
    (:func:`is_token68`): a token that verifies is well formed, so the accepted path
    pays nothing for the check.

    >>> bearer_token(b"bearer  abc"), bearer_token(b"Basic abc")
    (b'abc', None)
    """
    # The usual spelling first: it needs no case folding.
    if value.startswith(b"Bearer ") or value[:7].lower() == b"bearer ":
        token = value[7:]
    elif value.lower() == b"bearer":
        raise InvalidRequestError("Bearer without a token")
    else:
        return None
    if token.startswith(b" "):
        token = token.lstrip(b" ")
    if not token:
        raise InvalidRequestError("Bearer without a token")
    return token


def header_token(headers: Iterable[tuple[bytes, bytes]]) -> bytes | None:
    """The bearer token in ASGI ``headers`` (lower-case names), None if there is none.

    Raises :class:`InvalidRequestError` when ``Authorization`` appears more than once.
    """
    value = None
    for name, field in headers:
        if name == b"authorization":
            if value is not None:
                raise InvalidRequestError("more than one Authorization header")
            value = field
    return None if value is None else bearer_token(value)


def is_token68(token: bytes) -> bool:
    """True when ``token`` has the ``token68`` syntax of RFC 7235 sec. 2.1."""
    body = token.rstrip(b"=")
    return bool(body) and not body.translate(None, _TOKEN68)


def require_http_client(source: object) -> None:
    """Raise :class:`ConfigurationError` now when ``source`` will need httpx and it is missing.

    A :class:`RemoteJWKS` imports httpx on its first fetch; without this check a missing
    install showed up only then, as a 500 on every request or a start-up that hung.
    """
    if not isinstance(source, RemoteJWKS):
        return
    try:
        import httpx  # noqa: F401 (only whether it can be imported)
    except ImportError:
        raise ConfigurationError(
            "RemoteJWKS needs httpx, which is not installed: pip install 'tokenward[client]'"
        ) from None


def needs_async(verifier: Verifier) -> bool:
    """True when every verification should go through ``verify_async``.

    Static keys and an in-process key ring never go stale, so the sync ``verify`` is
    used and ``verify_async`` only on an unknown ``kid``. Any other source (a remote JWKS)
    may go stale, and ``verify_async`` refetches it on a cache miss (docs/verifier.md).
    """
    return not isinstance(verifier.keys, StaticKeys | KeyRingKeys)


async def verify(
    verifier: Verifier, token: bytes, scopes: Iterable[str], *, use_async: bool
) -> AccessClaims:
    """Verify with no I/O when possible; fall back to ``verify_async`` on an unknown ``kid``."""
    if use_async:
        return await verifier.verify_async(token, scopes=scopes)
    try:
        return verifier.verify(token, scopes=scopes)
    except KeyNotFoundError:
        return await verifier.verify_async(token, scopes=scopes)
