"""Two real server processes sharing one PostgreSQL or Redis behave as one server.

Each test starts two uvicorn processes (``serve_process.py``) on loopback ports over one
store namespace, then plays the same refresh story twice: every step on one server, and
alternating between the two. The outcomes must be identical: a replay within the grace
window gets the same pair wherever it lands, an older refresh token is reuse on either
server, and the session revoked by one is refused by the other (for access tokens, once
the revocation feed has reached it; the test waits for that with a bounded poll).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import POSTGRES_DSN, REDIS_URL, require_service
from tests.server.conftest import PASSWORD
from tests.server.serve_process import _open
from tokenward.service import Argon2Parameters, PasswordHasher
from tokenward.stores import UserRecord

ROOT = Path(__file__).resolve().parents[2]
URLS = {"postgres": POSTGRES_DSN, "redis": REDIS_URL}


async def _start(backend: str, namespace: str, grace: float) -> tuple[Any, httpx.AsyncClient]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.server.serve_process",
        backend, URLS[backend], namespace, str(grace),
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert process.stdout is not None
    port = int(await asyncio.wait_for(process.stdout.readline(), 30))
    http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10)
    for _ in range(400):  # readiness: a bounded poll of the real process
        try:
            if (await http.get("/.well-known/jwks.json")).status_code == 200:
                return process, http
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.025)
    raise AssertionError("the server process did not become ready")


async def _stop(process: Any, http: httpx.AsyncClient) -> list[str]:
    """SIGTERM the process; return the events it logged (JSON lines on stderr)."""
    await http.aclose()
    process.send_signal(signal.SIGTERM)
    _, stderr = await asyncio.wait_for(process.communicate(), 30)
    # uvicorn re-raises the signal once it has shut down, so that is the exit status.
    assert process.returncode == -signal.SIGTERM, stderr.decode(errors="replace")
    return [json.loads(line)["event"] for line in stderr.decode().splitlines()]


@pytest.fixture(params=["postgres", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    target = urlsplit(URLS[name])
    require_service(name, target.hostname or "", target.port or 0)
    return name


async def _servers(
    backend: str, grace: float
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    namespace = "t" + uuid.uuid4().hex[:12]
    store = await _open(backend, URLS[backend], namespace)
    hasher = PasswordHasher(Argon2Parameters(time_cost=1, memory_cost=8, parallelism=1))
    await store.create_user(
        UserRecord("u-ada", "ada", hasher.hash(PASSWORD), 0.0, 0.0, scopes=("read",))
    )
    started = await asyncio.gather(*(_start(backend, namespace, grace) for _ in range(2)))
    try:
        yield started[0][1], started[1][1]
    finally:
        logs = [await _stop(process, http) for process, http in started]
        await store.drop()  # type: ignore[attr-defined]
        await store.close()
    for events in logs:
        # The lifespan ran to its end: background tasks stopped, the store closed.
        assert events[-1] == "tokenward auth server stopped"
        assert "tokenward auth server started (issuer https://auth.test)" in events


async def _login(http: httpx.AsyncClient) -> dict[str, Any]:
    form = {"grant_type": "password", "username": "ada", "password": PASSWORD, "client_id": "web"}
    response = await http.post("/oauth/token", data=form)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _refresh(http: httpx.AsyncClient, token: str) -> httpx.Response:
    form = {"grant_type": "refresh_token", "refresh_token": token, "client_id": "web"}
    return await http.post("/oauth/token", data=form)


async def _eventually_refused(http: httpx.AsyncClient, access_token: str) -> bool:
    headers = {"Authorization": f"Bearer {access_token}"}
    for _ in range(200):  # the revocation feed polls every 50 ms; allow 5 s
        if (await http.get("/userinfo", headers=headers)).status_code == 401:
            return True
        await asyncio.sleep(0.025)
    return False


async def story(servers: list[httpx.AsyncClient]) -> list[object]:
    """Login, refresh, replay, refresh again, replay the oldest; step i runs on servers[i % n]."""

    def on(step: int) -> httpx.AsyncClient:
        return servers[step % len(servers)]

    seen: list[object] = []
    first = await _login(on(0))
    second = await _refresh(on(1), first["refresh_token"])
    seen.append(second.status_code)
    replay = await _refresh(on(2), first["refresh_token"])
    seen += [replay.status_code, replay.json() == second.json()]
    third = await _refresh(on(3), second.json()["refresh_token"])
    seen.append(third.status_code)
    oldest = await _refresh(on(4), first["refresh_token"])
    seen += [oldest.status_code, oldest.json().get("error")]
    latest = third.json() if third.status_code == 200 else second.json()
    after = await _refresh(on(5), latest["refresh_token"])
    seen += [after.status_code, after.json().get("error")]
    # The revoked session's access token is refused by every server.
    seen.append(all([await _eventually_refused(s, latest["access_token"]) for s in servers]))
    return seen


async def test_grace_replay_and_reuse_behave_as_on_one_server(backend: str) -> None:
    async for one, two in _servers(backend, grace=10.0):
        single = await story([one])
        across = await story([one, two])
    assert single == across
    # Within the grace window the replay got the very same pair; the oldest token later
    # was reuse, which revoked the session everywhere.
    assert single == [200, 200, True, 200, 400, "invalid_grant", 400, "invalid_grant", True]


async def test_with_no_grace_a_replay_on_the_other_server_is_reuse(backend: str) -> None:
    async for one, two in _servers(backend, grace=0.0):
        single = await story([one])
        across = await story([one, two])
    assert single == across
    assert single[:4] == [200, 400, False, 400]
