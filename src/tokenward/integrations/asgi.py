"""Pure ASGI middleware: bearer-token verification for Starlette, FastAPI, Litestar, ...

::

    app.add_middleware(TokenwardMiddleware, verifier=verifier, scopes=["read"],
                       optional_paths=["/health", "/docs*"])

Every ``http`` and ``websocket`` request must carry ``Authorization: Bearer <token>``
(RFC 6750 sec. 2.1). The verified :class:`~tokenward.service.AccessClaims` are put on
``scope["tokenward"]`` (``request.scope["tokenward"]`` in Starlette and FastAPI;
``None`` on an optional path requested without credentials). Refusals follow
:mod:`tokenward.integrations._bearer`: 401 (``invalid_token``, or a bare challenge when
no credentials were sent), 400 ``invalid_request``, 403 ``insufficient_scope``.

A CORS preflight (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``)
without credentials is passed through with ``scope["tokenward"] = None``: browsers send
no credentials on a preflight, and it is not an API call. ``CORSMiddleware`` should
still be outermost, so that refusals carry its headers too.

A refused websocket gets the same HTTP answer when the server supports the
``websocket.http.response`` extension (uvicorn, Starlette's test client), and is
otherwise closed before the handshake with code 1008 (policy violation) and the error
code as the reason.

The verified claims live on the scope, not on ``scope["state"]``: the scope is one
request's own dict, while ``state`` starts as a copy of the lifespan state, and a server
that handed every request the same dict would leak one user's claims into another's
request. Writing one key into the scope also allocates nothing.

This sits on the hot path of every request, so the accepted path does the minimum: one
pass over the headers, one bytes prefix test and slice, the verifier's cache lookup
(``Verifier.verify``: a dict read, a time check and the deny-list check; no I/O), and one
scope assignment. ``verify_async`` is awaited only for an unknown ``kid`` (the key ring
or JWKS may have rotated), or on every request when the key source can go stale (a
remote JWKS, which ``verify_async`` refetches on a cache miss).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from tokenward.errors import ConfigurationError, InvalidTokenError, KeyNotFoundError
from tokenward.integrations._bearer import (
    Challenges,
    InvalidRequestError,
    Refusal,
    bearer_token,
    needs_async,
    require_http_client,
)
from tokenward.service import AccessClaims, InsufficientScopeError, TokenService, Verifier

__all__ = ["SlidingConfig", "TokenwardMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Send = Callable[[Message], Awaitable[None]]

SCOPE_KEY = "tokenward"
"""Where the middleware puts the verified claims: ``scope["tokenward"]``."""
VERIFIER_KEY = "tokenward.verifier"
"""The verifier that checked a token read from the sliding cookie (see ``fastapi.py``)."""

_log = logging.getLogger("tokenward.integrations")
_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


def _check_name(what: str, name: str) -> str:
    # RFC 9110 sec. 5.1 field names and RFC 6265 sec. 4.1.1 cookie names are "token"s.
    if not isinstance(name, str) or not name or not set(name) <= _TOKEN_CHARS:
        raise ConfigurationError(f"{what} must be a non-empty HTTP token, got {name!r}")
    return name


class _Paths:
    """Exact paths, plus prefixes written with a trailing ``*`` (``"/public/*"``)."""

    __slots__ = ("exact", "prefixes")

    def __init__(self, patterns: Iterable[str]) -> None:
        if isinstance(patterns, str):
            patterns = (patterns,)
        exact: set[str] = set()
        prefixes: list[str] = []
        for pattern in patterns:
            if not isinstance(pattern, str) or not pattern.startswith("/"):
                raise ConfigurationError(f"a path pattern starts with '/', got {pattern!r}")
            if pattern.endswith("*"):
                prefixes.append(pattern[:-1])
            else:
                exact.add(pattern)
        self.exact = frozenset(exact)
        self.prefixes = tuple(prefixes)

    def __bool__(self) -> bool:
        return bool(self.exact or self.prefixes)

    def __contains__(self, path: object) -> bool:
        if path in self.exact:
            return True
        return bool(self.prefixes) and isinstance(path, str) and path.startswith(self.prefixes)


@dataclass(frozen=True, slots=True)
class SlidingConfig:
    """Sliding on action, for apps that embed the :class:`TokenService`.

    On a sliding route (``paths`` patterns as in ``optional_paths``, or ``predicate(scope)``
    true), a request whose token is past half its life gets a fresh access token from
    :meth:`TokenService.extend` in its response, if that is a success (2xx): in the
    ``header`` (default ``X-Refreshed-Token``), or, in cookie mode (``cookie="name"``), in
    an ``HttpOnly``,
    ``SameSite=Strict`` cookie (``Secure`` unless ``cookie_secure=False``, for
    ``http://localhost`` only) that the middleware also reads the token from when a
    request has no ``Authorization`` header. The fresh token never outlives the session's
    absolute expiry (``extend`` caps it), and a response that carries one is marked
    ``Cache-Control: no-store`` (replacing the app's own ``Cache-Control``), so no shared
    cache can hand it to someone else.

    >>> # SlidingConfig(service, paths=["/api/*"])
    >>> # SlidingConfig(service, paths=["/app/*"], cookie="tw_access")
    """

    service: TokenService
    paths: Iterable[str] = ()
    predicate: Callable[[Scope], bool] | None = None
    header: str = "X-Refreshed-Token"
    cookie: str | None = None
    cookie_path: str = "/"
    cookie_secure: bool = True
    _paths: _Paths = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.service, TokenService):
            raise ConfigurationError("SlidingConfig needs the app's TokenService")
        paths = _Paths(self.paths)
        if not paths and self.predicate is None:
            raise ConfigurationError("name the sliding routes: paths=[...] or predicate=...")
        _check_name("header", self.header)
        if self.cookie is not None:
            _check_name("cookie", self.cookie)
        if not self.cookie_path.startswith("/") or not self.cookie_path.isprintable():
            raise ConfigurationError("cookie_path must be a printable path starting with '/'")
        if ";" in self.cookie_path:
            raise ConfigurationError("cookie_path must not contain ';'")
        object.__setattr__(self, "paths", tuple(self.paths))
        object.__setattr__(self, "_paths", paths)

    def applies(self, scope: Scope) -> bool:
        """True when the request is on a sliding route."""
        if scope["path"] in self._paths:
            return True
        return self.predicate is not None and self.predicate(scope)

    def due(self, claims: AccessClaims) -> bool:
        """True when the token is past half its life (the only time one is extended)."""
        return 2 * self.service.clock.now() >= claims.iat + claims.exp

    def fresh_token(self, claims: AccessClaims, token: bytes) -> tuple[bytes, bytes] | None:
        """The response header carrying a fresh token, or None (not yet half-way, capped)."""
        service = self.service
        now = service.clock.now()
        if 2 * now < claims.iat + claims.exp:
            return None  # First half of its life: the common case, decided without extend.
        try:
            fresh = service.extend(token)
        except InvalidTokenError as exc:
            # The service's own verifier refused a token this middleware's verifier
            # accepted (another deny list, another audience): serve it, do not extend it.
            _log.info("sliding skipped: the token service refused the token (%s)", exc.code)
            return None
        if fresh is None:
            return None
        if self.cookie is None:
            return self.header.lower().encode(), fresh.encode()
        # The fresh token's expiry, as extend computed it: a full lifetime from now,
        # capped by the session's absolute expiry.
        issued = math.floor(now)
        session_exp = claims.claims["session_exp"]
        max_age = min(int(service.policy.access_lifetime), session_exp - issued)
        attributes = f"Max-Age={max_age}; Path={self.cookie_path}; HttpOnly; SameSite=Strict"
        if self.cookie_secure:
            attributes += "; Secure"
        return b"set-cookie", f"{self.cookie}={fresh}; {attributes}".encode()


def _sliding_send(send: Send, sliding: SlidingConfig, claims: AccessClaims, token: bytes) -> Send:
    # The fresh token is minted when the response starts, and only for a success (2xx):
    # a 404, a refused form or a failed handler is no activity worth extending a session.
    async def send_with_fresh_token(message: Message) -> None:
        if message["type"] == "http.response.start" and 200 <= message["status"] < 300:
            header = sliding.fresh_token(claims, token)
            if header is not None:
                headers = [
                    h for h in message.get("headers", ()) if h[0].lower() != b"cache-control"
                ]
                headers.append(header)
                headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
        await send(message)

    return send_with_fresh_token


def _is_preflight(scope: Scope) -> bool:
    # A CORS preflight: OPTIONS with Origin and Access-Control-Request-Method. The
    # browser sends it without credentials (Fetch standard, "CORS-preflight request"), so
    # refusing it for lack of a token would break every cross-origin call that needs one.
    if scope["method"] != "OPTIONS":
        return False
    names = {name for name, _ in scope["headers"]}
    return b"origin" in names and b"access-control-request-method" in names


def _cookie_token(scope: Scope, name: bytes) -> bytes | None:
    for header, value in scope["headers"]:
        if header == b"cookie":
            for pair in value.split(b";"):
                key, sep, token = pair.strip().partition(b"=")
                if sep and key == name:
                    return token or None
    return None


class TokenwardMiddleware:
    """Verify ``Authorization: Bearer`` tokens; see the module docstring.

    * ``scopes``: scopes every protected request's token must carry (403 otherwise).
    * ``optional_paths``: exact paths, or prefixes ending in ``*``, where a request
      without credentials passes with ``scope["tokenward"] = None`` and ``scopes`` are
      not required. Credentials that *are* sent there are still verified: a bad token
      is refused, never silently treated as anonymous.
    * ``sliding``: a :class:`SlidingConfig` (apps that embed the token service).
    * ``realm``: the ``realm`` of the challenges.

    >>> # app = Starlette(routes=..., middleware=[Middleware(TokenwardMiddleware, verifier=v)])
    """

    __slots__ = (
        "_async",
        "_challenges",
        "_cookie",
        "_optional",
        "_scopes",
        "_sliding",
        "_verify",
        "_verify_async",
        "app",
        "verifier",
    )

    def __init__(
        self,
        app: Callable[..., Awaitable[None]],
        verifier: Verifier,
        *,
        scopes: str | Iterable[str] = (),
        optional_paths: Iterable[str] = (),
        sliding: SlidingConfig | None = None,
        realm: str = "tokenward",
    ) -> None:
        if not isinstance(verifier, Verifier):
            raise ConfigurationError("TokenwardMiddleware needs a tokenward Verifier")
        if sliding is not None and not isinstance(sliding, SlidingConfig):
            raise ConfigurationError("sliding must be a SlidingConfig")
        require_http_client(verifier.keys)
        self.app = app
        self.verifier = verifier
        self._verify = verifier.verify
        self._verify_async = verifier.verify_async
        self._async = needs_async(verifier)
        self._scopes = tuple(scopes.split() if isinstance(scopes, str) else scopes)
        optional = _Paths(optional_paths)
        self._optional = optional if optional else None
        self._sliding = sliding
        self._cookie = (
            sliding.cookie.encode() if sliding is not None and sliding.cookie is not None else None
        )
        self._challenges = Challenges(realm)

    # The parameters are typed Any on purpose: frameworks type scopes differently
    # (Starlette a MutableMapping, Litestar TypedDicts), and this must fit them all.
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind not in {"http", "websocket"}:
            await self.app(scope, receive, send)  # lifespan, and anything else: not ours.
            return
        value = None
        for name, field_value in scope["headers"]:
            if name == b"authorization":
                if value is not None:  # Two credentials: RFC 7235 allows one.
                    await self._refuse(self._challenges.invalid_request, scope, send)
                    return
                value = field_value
        token: bytes | None
        if value is None:
            token = None if self._cookie is None else _cookie_token(scope, self._cookie)
        else:
            token = value[7:] if value.startswith(b"Bearer ") else b""
            if not token or token[0] == 0x20:
                try:  # The general case: any case, extra spaces, or a malformed value.
                    token = bearer_token(value)
                except InvalidRequestError:
                    await self._refuse(self._challenges.invalid_request, scope, send)
                    return
        scopes = self._scopes
        optional = self._optional
        if optional is not None and scope["path"] in optional:
            if token is None:
                scope[SCOPE_KEY] = None
                await self.app(scope, receive, send)
                return
            scopes = ()
        elif token is None:
            if kind == "http" and _is_preflight(scope):
                scope[SCOPE_KEY] = None  # Not an API call: CORSMiddleware answers it.
                await self.app(scope, receive, send)
                return
            await self._refuse(self._challenges.missing, scope, send)
            return
        try:
            if self._async:
                claims = await self._verify_async(token, scopes=scopes)
            else:
                try:
                    claims = self._verify(token, scopes=scopes)
                except KeyNotFoundError:
                    claims = await self._verify_async(token, scopes=scopes)
        except (InvalidTokenError, InsufficientScopeError) as exc:
            refusal = self._challenges.for_error(exc, token, from_header=value is not None)
            await self._refuse(refusal, scope, send)
            return
        scope[SCOPE_KEY] = claims
        if value is None:
            # The token came from the sliding cookie: say who verified it, so that the
            # FastAPI dependency may reuse the claims only if it holds the same verifier.
            scope[VERIFIER_KEY] = self.verifier
        sliding = self._sliding
        if (
            sliding is not None
            and kind == "http"
            and sliding.applies(scope)
            and sliding.due(claims)
        ):
            send = _sliding_send(send, sliding, claims, token)
        await self.app(scope, receive, send)

    @staticmethod
    async def _refuse(refusal: Refusal, scope: Scope, send: Send) -> None:
        headers = list(refusal.raw_headers)  # A fresh list: outer middleware may mutate it.
        if scope["type"] == "http":
            await send(
                {"type": "http.response.start", "status": refusal.status, "headers": headers}
            )
            await send({"type": "http.response.body", "body": refusal.body})
        elif "websocket.http.response" in (scope.get("extensions") or {}):
            await send(
                {
                    "type": "websocket.http.response.start",
                    "status": refusal.status,
                    "headers": headers,
                }
            )
            await send({"type": "websocket.http.response.body", "body": refusal.body})
        else:
            # RFC 6455 sec. 7.4.1: 1008, the message violates the endpoint's policy.
            await send({"type": "websocket.close", "code": 1008, "reason": refusal.error})
