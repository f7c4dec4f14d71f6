"""The Django middleware and decorator, through Django's test client.

Django settings are process-wide: this module configures them once (a URLconf made of
its own views) and swaps the verifier per test with ``override_settings``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import django  # type: ignore[import-untyped]
import pytest
from django.conf import settings  # type: ignore[import-untyped]

from tests.integrations.conftest import EXPIRED, INVALID, MALFORMED, MISSING, bearer, insufficient
from tokenward.errors import ConfigurationError
from tokenward.service import TokenPair, Verifier
from tokenward.testing import FrozenClock

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="tests-only-not-secret",
        ALLOWED_HOSTS=["testserver"],
        ROOT_URLCONF=__name__,
        MIDDLEWARE=["tokenward.integrations.django.TokenwardMiddleware"],
        INSTALLED_APPS=[],
        USE_TZ=True,
    )
    django.setup()

from django.http import JsonResponse  # type: ignore[import-untyped]
from django.test import Client, override_settings  # type: ignore[import-untyped]
from django.urls import path  # type: ignore[import-untyped]

from tokenward.integrations.django import require_token


@require_token(scopes=["read"])
def items(request: Any) -> Any:
    return JsonResponse({"sub": request.tokenward.sub})


@require_token(scopes="admin")
def admin(request: Any) -> Any:
    return JsonResponse({"sub": request.tokenward.sub})


def public(request: Any) -> Any:
    claims = request.tokenward
    return JsonResponse({"sub": claims.sub if claims else None})


urlpatterns = [path("items", items), path("admin", admin), path("public", public)]


@pytest.fixture
def client(verifier: Verifier) -> Iterator[Client]:
    with override_settings(TOKENWARD_VERIFIER=verifier):
        yield Client()


def assert_refused(response: Any, status: int, challenge: str, error: str) -> None:
    assert response.status_code == status
    assert response.headers["WWW-Authenticate"] == challenge
    assert response.json() == {"error": error}


def auth(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": bearer(token)["Authorization"]}


def test_valid_and_anonymous(client: Client, pair: TokenPair) -> None:
    assert client.get("/items", **auth(pair.access_token)).json() == {"sub": "ada"}
    assert client.get("/public").json() == {"sub": None}
    assert client.get("/public", **auth(pair.access_token)).json() == {"sub": "ada"}


def test_refusals(client: Client, pair: TokenPair, clock: FrozenClock) -> None:
    assert_refused(client.get("/items"), 401, MISSING, "unauthorized")
    assert_refused(
        client.get("/public", HTTP_AUTHORIZATION="Bearer"), 400, MALFORMED, "invalid_request"
    )
    assert_refused(client.get("/public", **auth("a.b.c")), 401, INVALID, "invalid_token")
    response = client.get("/admin", **auth(pair.access_token))
    assert_refused(response, 403, insufficient("admin"), "insufficient_scope")
    clock.advance(900)
    assert_refused(client.get("/items", **auth(pair.access_token)), 401, EXPIRED, "invalid_token")


def test_misconfiguration_is_reported() -> None:
    with override_settings(TOKENWARD_VERIFIER=None), pytest.raises(ConfigurationError):
        Client().get("/public")
