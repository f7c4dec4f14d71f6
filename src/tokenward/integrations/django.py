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

Both work under WSGI and ASGI: the middleware is sync- and async-capable (Django runs it
in the mode of the handler, without a thread switch), and ``@require_token`` on an
``async def`` view returns an ``async def`` wrapper.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings  # type: ignore[import-untyped]
from django.http import HttpResponse  # type: ignore[import-untyped]
from django.utils.module_loading import import_string  # type: ignore[import-untyped]

from tokenward.errors import ConfigurationError, InvalidTokenError
from tokenward.integrations._bearer import (
    Challenges,
    InvalidRequestError,
    Refusal,
    bearer_token,
    require_http_client,
)
from tokenward.service import Verifier

__all__ = ["TokenwardMiddleware", "require_token"]

View = TypeVar("View", bound=Callable[..., Any])


def _challenges() -> Challenges:
    realm = getattr(settings, "TOKENWARD_REALM", "tokenward")
    if not isinstance(realm, str):  # Also keeps an unhashable value out of the cache.
        raise ConfigurationError(f"settings.TOKENWARD_REALM must be a string, got {realm!r}")
    return _for_realm(realm)


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

    # Verification is pure computation, so the same code serves both modes; Django
    # picks the mode of the next handler and marks this instance accordingly.
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        configured = getattr(settings, "TOKENWARD_VERIFIER", None)
        verifier = import_string(configured) if isinstance(configured, str) else configured
        if not isinstance(verifier, Verifier):
            raise ConfigurationError("settings.TOKENWARD_VERIFIER must name a tokenward Verifier")
        require_http_client(verifier.keys)
        self.get_response = get_response
        self.verifier = verifier
        self.challenges = _challenges()
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request: Any) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        refusal = self._authenticate(request)
        return self.get_response(request) if refusal is None else _response(refusal)

    async def __acall__(self, request: Any) -> Any:
        refusal = self._authenticate(request)
        return await self.get_response(request) if refusal is None else _response(refusal)

    def _authenticate(self, request: Any) -> Refusal | None:
        """Set ``request.tokenward``; or the refusal for credentials that are bad."""
        value = request.META.get("HTTP_AUTHORIZATION")
        try:
            token = None if value is None else bearer_token(value.encode("latin-1"))
        except (InvalidRequestError, UnicodeEncodeError):
            return self.challenges.invalid_request
        if token is None:
            request.tokenward = None
            return None
        try:
            request.tokenward = self.verifier.verify(token)
        except InvalidTokenError as exc:
            return self.challenges.for_error(exc, token)
        return None


def _refusal(request: Any, required: frozenset[str]) -> Refusal | None:
    claims = getattr(request, "tokenward", None)
    if claims is None:
        if not hasattr(request, "tokenward"):
            raise ConfigurationError("add TokenwardMiddleware to settings.MIDDLEWARE")
        return _challenges().missing
    return _challenges().scope_refusal(claims, required)


def require_token(*, scopes: str | Iterable[str] = ()) -> Callable[[View], View]:
    """Refuse requests without a verified token (401) or without ``scopes`` (403).

    Works on ``def`` and ``async def`` views alike (an async view gets an async wrapper,
    which Django awaits).
    """
    required = frozenset(scopes.split() if isinstance(scopes, str) else scopes)

    def decorate(view: View) -> View:
        if iscoroutinefunction(view):

            @functools.wraps(view)
            async def async_wrapper(request: Any, *args: Any, **kwargs: Any) -> Any:
                refusal = _refusal(request, required)
                if refusal is not None:
                    return _response(refusal)
                return await view(request, *args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(view)
        def wrapper(request: Any, *args: Any, **kwargs: Any) -> Any:
            refusal = _refusal(request, required)
            if refusal is not None:
                return _response(refusal)
            return view(request, *args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
