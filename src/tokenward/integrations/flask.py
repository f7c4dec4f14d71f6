"""Flask: the ``Tokenward`` extension and the ``@require_token`` decorator.

::

    from flask import Flask
    from tokenward.integrations.flask import Tokenward, current_claims, require_token

    app = Flask(__name__)
    Tokenward(app, verifier)  # or, in a factory: tokenward.init_app(app, verifier)

    @app.get("/items")
    @require_token(scopes=["read"])
    def items():
        return {"user": current_claims().sub}   # also flask.g.tokenward

Refusals are the RFC 6750 ones of every tokenward integration: 401 with a
``WWW-Authenticate: Bearer`` challenge (no error attribute when no credentials were
sent), 400 ``invalid_request``, 403 ``insufficient_scope``, with a ``{"error": code}``
JSON body.

Flask is synchronous, so verification here never fetches keys: ``Verifier.verify`` is
pure computation. Give the verifier keys that are already there: ``StaticKeys.from_file``
(a JWKS file deployed with the app), ``KeyRingKeys`` (an embedded token service), or a
``RemoteJWKS`` loaded before serving and kept fresh by :class:`BackgroundKeyRefresh` (a
daemon thread with its own event loop). A token signed by a key the verifier does not
hold is refused (401) rather than fetched for.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, overload

from flask import Flask, Response, current_app, g, request

from tokenward.errors import ConfigurationError, InvalidTokenError
from tokenward.integrations._bearer import (
    Challenges,
    InvalidRequestError,
    Refusal,
    bearer_token,
    require_http_client,
)
from tokenward.integrations._refresh import BackgroundKeyRefresh
from tokenward.service import AccessClaims, InsufficientScopeError, Verifier

__all__ = ["BackgroundKeyRefresh", "Tokenward", "current_claims", "require_token"]

_log = logging.getLogger("tokenward.integrations")
_EXTENSION = "tokenward"
View = TypeVar("View", bound=Callable[..., Any])


def _response(refusal: Refusal) -> Response:
    return Response(
        refusal.body, refusal.status, headers=refusal.headers, mimetype="application/json"
    )


class Tokenward:
    """The Flask extension: holds the verifier and the realm for ``@require_token``."""

    def __init__(
        self,
        app: Flask | None = None,
        verifier: Verifier | None = None,
        *,
        realm: str = "tokenward",
    ) -> None:
        self.verifier = verifier
        self._challenges = Challenges(realm)
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask, verifier: Verifier | None = None) -> None:
        """Register with ``app`` (the application-factory pattern)."""
        if verifier is not None:
            self.verifier = verifier
        if not isinstance(self.verifier, Verifier):
            raise ConfigurationError("Tokenward needs a tokenward Verifier")
        require_http_client(self.verifier.keys)
        if not len(self.verifier.keys.key_set):
            _log.warning(
                "the verifier has no keys yet; Flask never fetches keys during a request, "
                "so load them before serving (see tokenward.integrations.flask)"
            )
        app.extensions[_EXTENSION] = self

    def authenticate(
        self, scopes: Iterable[str], *, optional: bool
    ) -> AccessClaims | Response | None:
        """The current request's claims, or the refusal to send (None: anonymous, optional)."""
        value = request.environ.get("HTTP_AUTHORIZATION")
        try:
            token = None if value is None else bearer_token(value.encode("latin-1"))
        except (InvalidRequestError, UnicodeEncodeError):
            return _response(self._challenges.invalid_request)
        if token is None:
            return None if optional else _response(self._challenges.missing)
        verifier = self.verifier
        if verifier is None:
            raise ConfigurationError("Tokenward needs a tokenward Verifier")
        try:
            return verifier.verify(token, scopes=() if optional else scopes)
        except (InvalidTokenError, InsufficientScopeError) as exc:
            return _response(self._challenges.for_error(exc, token))


def _extension() -> Tokenward:
    extension = current_app.extensions.get(_EXTENSION)
    if not isinstance(extension, Tokenward):
        raise ConfigurationError("Tokenward(app, verifier) was not set up for this app")
    return extension


@overload
def require_token(view: View, /) -> View: ...
@overload
def require_token(
    *, scopes: str | Iterable[str] = (), optional: bool = False
) -> Callable[[View], View]: ...
def require_token(
    view: View | None = None, /, *, scopes: str | Iterable[str] = (), optional: bool = False
) -> View | Callable[[View], View]:
    """Decorate a view: verify the bearer token, require ``scopes``, set ``g.tokenward``.

    ``optional=True``: a request without credentials runs the view with
    ``g.tokenward = None`` and ``scopes`` are not required; credentials that are sent are
    still verified, and refused if bad. Usable bare (``@require_token``) or called.
    """
    required = tuple(scopes.split() if isinstance(scopes, str) else scopes)

    def decorate(func: View) -> View:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            outcome = _extension().authenticate(required, optional=optional)
            if isinstance(outcome, Response):
                return outcome
            g.tokenward = outcome
            return current_app.ensure_sync(func)(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate if view is None else decorate(view)


def current_claims() -> AccessClaims:
    """The claims ``@require_token`` verified for this request (typed ``g.tokenward``)."""
    claims = g.get(_EXTENSION)
    if isinstance(claims, AccessClaims):
        return claims
    raise LookupError("no verified token in this request: is the view @require_token?")
