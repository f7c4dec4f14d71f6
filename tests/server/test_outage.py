"""Store outages: 503 with Retry-After from every endpoint that needs the store, never 500.

The store is a real Redis or PostgreSQL reached through a loopback proxy that the test
cuts (``tests/proxy.py``), which is what a dead server or a broken network looks like.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from starlette.applications import Starlette

from tests.conftest import POSTGRES_DSN, REDIS_URL, require_service
from tests.proxy import CuttableProxy
from tests.server.conftest import ADMIN_PASSWORD, PASSWORD, basic, bearer, login, serve, state_of
from tokenward.server import Settings, create_app
from tokenward.server._background import Housekeeper
from tokenward.stores import Store
from tokenward.testing import FrozenClock


def _through(url: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))


async def _open(backend: str, url: str, namespace: str) -> Store:
    if backend == "redis":
        from tokenward.stores.redis import RedisStore

        return await RedisStore.connect(url, prefix=namespace)
    from tokenward.stores.postgres import PostgresStore

    return await PostgresStore.connect(url, schema=namespace)


@pytest.fixture(params=["redis", "postgres"])
async def outage(
    request: pytest.FixtureRequest, settings: Settings, clock: FrozenClock
) -> AsyncIterator[tuple[httpx.AsyncClient, Starlette, CuttableProxy]]:
    backend: str = request.param
    url = REDIS_URL if backend == "redis" else POSTGRES_DSN
    target = urlsplit(url)
    require_service(backend, target.hostname or "", target.port or 0)
    namespace = "t" + uuid.uuid4().hex[:12]
    proxy = CuttableProxy(target.hostname or "", target.port or 0)
    await proxy.start()
    store = await _open(backend, _through(url, proxy.port), namespace)
    try:
        app = create_app(settings, store=store, clock=clock)
        async with serve(app) as http:
            await state_of(app).users.create_user("ada", PASSWORD)
            await state_of(app).users.create_user("root", ADMIN_PASSWORD, admin=True)
            yield http, app, proxy
    finally:
        await store.close()
        await proxy.close()
        # Clean up through a direct connection: the proxy may have been left cut.
        direct = await _open(backend, url, namespace)
        await direct.drop()  # type: ignore[attr-defined]
        await direct.close()


async def test_every_store_backed_endpoint_answers_503_during_an_outage(
    outage: tuple[httpx.AsyncClient, Starlette, CuttableProxy],
) -> None:
    http, app, proxy = outage
    pair = await login(http)
    admin = bearer((await login(http, "root", ADMIN_PASSWORD))["access_token"])
    cookie = await http.post(
        "/cookie/login",
        data={"username": "ada", "password": PASSWORD, "client_id": "web"},
        headers={"X-CSRF-Token": "1"},
    )
    token = bearer(pair["access_token"])
    login_form = {"grant_type": "password", "username": "ada", "password": PASSWORD}
    refresh_form = {"grant_type": "refresh_token", "refresh_token": pair["refresh_token"]}
    await proxy.cut()

    revoke_form = {"token": pair["refresh_token"], "client_id": "web"}
    introspect_form = {"token": pair["access_token"]}
    new_user = {"username": "x", "password": PASSWORD}
    csrf = {"X-CSRF-Token": cookie.json()["csrf_token"]}
    calls = {
        "login": http.post("/oauth/token", data={**login_form, "client_id": "web"}),
        "refresh": http.post("/oauth/token", data={**refresh_form, "client_id": "web"}),
        "revoke": http.post("/oauth/revoke", data=revoke_form),
        "introspect": http.post("/oauth/introspect", data=introspect_form, auth=basic()),
        "sessions": http.get("/sessions", headers=token),
        "logout": http.post("/logout", headers=token),
        "logout_all": http.post("/logout/all", headers=token),
        "admin_list": http.get("/admin/users", headers=admin),
        "admin_create": http.post("/admin/users", json=new_user, headers=admin),
        "cookie_refresh": http.post("/cookie/refresh", headers=csrf),
    }
    for name, call in calls.items():
        response = await call
        assert response.status_code == 503, name
        assert response.json()["error"] == "temporarily_unavailable", name
        assert response.headers["retry-after"] == "5", name
    assert state_of(app).metrics.store_unavailable.get() == len(calls)

    # Requests with a valid access token need no store at all.
    assert (await http.get("/userinfo", headers=token)).status_code == 200
    assert (await http.get("/.well-known/jwks.json")).status_code == 200

    await proxy.restore()
    assert (await http.get("/sessions", headers=token)).status_code == 200
    refreshed = await http.post("/oauth/token", data={**refresh_form, "client_id": "web"})
    assert refreshed.status_code == 200


async def test_background_tasks_survive_an_outage(
    outage: tuple[httpx.AsyncClient, Starlette, CuttableProxy],
) -> None:
    _, app, proxy = outage
    keeper: Housekeeper = app.state.housekeeper
    jobs = {"purge": keeper.purge, "sync": keeper.sync_revocations, "keys": keeper.key_tick}
    await proxy.cut()
    for name, job in jobs.items():
        assert await keeper.run_once(name, job) is False
    assert state_of(app).metrics.store_unavailable.get() == len(jobs)
    await proxy.restore()
    for name, job in jobs.items():
        assert await keeper.run_once(name, job) is True
