"""Django: a middleware that verifies bearer tokens, and ``@require_token`` for views.

::

    # settings.py
    MIDDLEWARE = [..., "tokenward.integrations.django.TokenwardMiddleware"]
    TOKENWARD_VERIFIER = "myproject.auth.verifier"   # dotted path to a Verifier
    TOKENWARD_REALM = "api"                          # optional

    # views.py
    from tokenward.integrations.django import require_token

    @require_token(scopes=["read"])
    def items(request):
        return JsonResponse({"user": request.tokenward.sub})

The middleware sets ``request.tokenward`` to the verified claims, or to None when the
request carries no bearer credentials (like Django's own ``AnonymousUser``: pages that
need no token keep working). Credentials that are sent are always verified: a malformed
header is answered 400 ``invalid_request`` and a bad token 401 ``invalid_token`` at once.
``@require_token`` then answers 401 (bare challenge) without credentials and 403
``insufficient_scope`` without the scopes. Verification is synchronous and never
fetches keys; see :mod:`tokenward.integrations.flask` for where keys should come from.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from django.conf import settings  # type: ignore[import-untyped]
from django.http import HttpResponse  # type: ignore[import-untyped]
from django.utils.module_loading import import_string  # type: ignore[import-untyped]

from tokenward.errors import ConfigurationError, InvalidTokenError
from tokenward.integrations._bearer import Challenges, InvalidRequestError, Refusal, bearer_token
from tokenward.service import InsufficientScopeError, Verifier

__all__ = ["TokenwardMiddleware", "require_token"]

View = TypeVar("View", bound=Callable[..., Any])


def _challenges() -> Challenges:
    return _for_realm(getattr(settings, "TOKENWARD_REALM", "tokenward"))


@functools.lru_cache(maxsize=8)
def _for_realm(realm: str) -> Challenges:
    return Challenges(realm)


def _response(refusal: Refusal) -> Any:
    response = HttpResponse(refusal.body, status=refusal.status, content_type="application/json")
    for name, value in refusal.headers.items():
        response[name] = value
    return response


class TokenwardMiddleware:
    """Verify ``Authorization: Bearer``; set ``request.tokenward`` (None: no credentials)."""

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        configured = getattr(settings, "TOKENWARD_VERIFIER", None)
        verifier = import_string(configured) if isinstance(configured, str) else configured
        if not isinstance(verifier, Verifier):
            raise ConfigurationError("settings.TOKENWARD_VERIFIER must name a tokenward Verifier")
        self.get_response = get_response
        self.verifier = verifier
        self.challenges = _challenges()

    def __call__(self, request: Any) -> Any:
        value = request.META.get("HTTP_AUTHORIZATION")
        try:
            token = None if value is None else bearer_token(value.encode("latin-1"))
        except (InvalidRequestError, UnicodeEncodeError):
            return _response(self.challenges.invalid_request)
        if token is None:
            request.tokenward = None
            return self.get_response(request)
        try:
            request.tokenward = self.verifier.verify(token)
        except InvalidTokenError as exc:
            return _response(self.challenges.for_error(exc, token))
        return self.get_response(request)


def require_token(*, scopes: str | Iterable[str] = ()) -> Callable[[View], View]:
    """Refuse requests without a verified token (401) or without ``scopes`` (403)."""
    required = frozenset(scopes.split() if isinstance(scopes, str) else scopes)

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def wrapper(request: Any, *args: Any, **kwargs: Any) -> Any:
            claims = getattr(request, "tokenward", None)
            if claims is None:
                if not hasattr(request, "tokenward"):
                    raise ConfigurationError("add TokenwardMiddleware to settings.MIDDLEWARE")
                return _response(_challenges().missing)
            if not claims.scopes.issuperset(required):
                missing = required - claims.scopes
                error = InsufficientScopeError(
                    f"the token lacks the scopes {sorted(missing)}",
                    required=required,
                    missing=missing,
                )
                return _response(_challenges().for_error(error, b""))
            return view(request, *args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
