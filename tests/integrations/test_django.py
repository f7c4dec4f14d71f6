"""The Django middleware and decorator, through Django's test client.

Django settings are process-wide: this module configures them once (a URLconf made of
its own views) and swaps the verifier per test with ``override_settings``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import django  # type: ignore[import-untyped]
import pytest
from asgiref.sync import sync_to_async
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
from django.test import AsyncClient, Client, override_settings  # type: ignore[import-untyped]
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


@require_token(scopes=["read"])
async def async_items(request: Any) -> Any:
    return JsonResponse({"sub": request.tokenward.sub})


@require_token(scopes="admin")
async def async_admin(request: Any) -> Any:
    return JsonResponse({"sub": request.tokenward.sub})


urlpatterns = [
    path("items", items),
    path("admin", admin),
    path("public", public),
    path("async/items", async_items),
    path("async/admin", async_admin),
]


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


# -- async views and ASGI ------------------------------------------------------------------


@pytest.mark.parametrize("client_class", [Client, AsyncClient], ids=["wsgi", "asgi"])
async def test_async_views(verifier: Verifier, pair: TokenPair, client_class: Any) -> None:
    token = bearer(pair.access_token)
    with override_settings(TOKENWARD_VERIFIER=verifier):
        client = client_class()

        async def get(path: str, **extra: Any) -> Any:
            if client_class is AsyncClient:
                return await client.get(path, **extra)
            return await sync_to_async(client.get)(path, **extra)

        assert (await get("/async/items", headers=token)).json() == {"sub": "ada"}
        assert_refused(await get("/async/items"), 401, MISSING, "unauthorized")
        response = await get("/async/admin", headers=token)
        assert_refused(response, 403, insufficient("admin"), "insufficient_scope")


async def test_the_middleware_runs_async_under_asgi(
    verifier: Verifier, pair: TokenPair, caplog: pytest.LogCaptureFixture
) -> None:
    # A sync-only middleware under ASGI is adapted (run in a thread, the view called back
    # through async_to_sync), which Django logs at DEBUG on "django.request".
    token = bearer(pair.access_token)
    with override_settings(TOKENWARD_VERIFIER=verifier), caplog.at_level("DEBUG"):
        client = AsyncClient()
        assert (await client.get("/async/items", headers=token)).json() == {"sub": "ada"}
        assert (await client.get("/items", headers=token)).json() == {"sub": "ada"}
        response = await client.get("/public", headers=bearer("a.b.c"))
        assert_refused(response, 401, INVALID, "invalid_token")
    adapted = [r.getMessage() for r in caplog.records if "adapted" in r.getMessage()]
    assert not [m for m in adapted if "TokenwardMiddleware" in m], adapted


@pytest.mark.parametrize("realm", [123, ["api"], "caf\u20ac"], ids=repr)
def test_a_bad_realm_setting_is_a_configuration_error(verifier: Verifier, realm: Any) -> None:
    with (
        override_settings(TOKENWARD_VERIFIER=verifier, TOKENWARD_REALM=realm),
        pytest.raises(ConfigurationError, match=r"(?i)realm"),
    ):
        Client().get("/public")
