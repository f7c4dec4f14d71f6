"""The real-time mode: a real server over loopback, sessions against JWT, for a wall time.

``tokenward bench --real --seconds 10`` starts :mod:`tokenward.bench._server` (the auth
server from :func:`tokenward.server.create_app` with two protected resources, under
uvicorn, on 127.0.0.1) on the chosen store, logs ``concurrency`` users in both ways
(an access token from ``POST /oauth/token``, a server session from the session login),
then for ``seconds`` each drives ``GET /bench/session/me`` (session cookie, one store
read per request) and ``GET /bench/jwt/me`` (bearer token, no store I/O) with that many
requests in flight, and compares them: requests per second and latency as the client
sees them, store operations and server CPU time per request as the server counts them.

The client (httpx) and the server share the machine, so the client's own cost caps
the throughput of both; store operations and server CPU time per request are the
figures that do not depend on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokenward.bench._backends import (
    DEFAULT_POSTGRES_DSN,
    DEFAULT_REDIS_URL,
    BackendSpec,
    display_url,
)
from tokenward.bench._progress import Progress
from tokenward.bench._stats import sample_every, summarize_latencies
from tokenward.errors import ConfigurationError, TokenwardError

if TYPE_CHECKING:
    from tokenward.bench._runner import BenchConfig

__all__ = ["RealServerError", "run_real"]

_START_TIMEOUT = 60.0
_STOP_TIMEOUT = 15.0


class RealServerError(TokenwardError):
    """The bench's server process did not start or failed."""

    code = "bench_server_failed"


def _httpx() -> Any:
    try:
        import httpx
    except ImportError:
        raise ConfigurationError(
            "the real-time bench needs the server dependencies (httpx, starlette, uvicorn); "
            "install tokenward with the server extra"
        ) from None
    return httpx


async def run_real(spec: BackendSpec, config: BenchConfig, progress: Progress) -> dict[str, Any]:
    """Run the real-time comparison on ``spec``'s store and return its figures."""
    httpx = _httpx()
    tag = secrets.token_hex(4)
    workdir = Path(tempfile.mkdtemp(prefix="tokenward-bench-"))
    env = dict(os.environ)
    env["TOKENWARD_BENCH_BACKEND"] = spec.name
    password = secrets.token_urlsafe(16)
    env["TOKENWARD_BENCH_PASSWORD"] = password
    users = config.concurrency
    env["TOKENWARD_BENCH_USERS"] = str(users)
    if spec.name == "sqlite":
        where = str(workdir / "bench.db")
        shown = f"sqlite:///{where}"
    elif spec.name == "redis":
        where = spec.url or DEFAULT_REDIS_URL
        env["TOKENWARD_BENCH_NAMESPACE"] = f"tokenward-bench-{tag}"
        shown = display_url(where)
    elif spec.name == "postgres":
        where = spec.url or DEFAULT_POSTGRES_DSN
        env["TOKENWARD_BENCH_NAMESPACE"] = f"tokenward_bench_{tag}"
        shown = display_url(where)
    else:
        where, shown = "", "memory://"
    env["TOKENWARD_BENCH_STORE"] = where
    log = workdir / "server.log"
    try:
        with log.open("wb") as errors:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tokenward.bench._server",
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=errors,
            )
            try:
                port = await _port(process, log)
                base = f"http://127.0.0.1:{port}"
                limits = httpx.Limits(max_connections=users, max_keepalive_connections=users)
                async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as http:
                    await _ready(http, process, log)
                    figures = await _compare(http, config, progress, password)
            finally:
                await _stop(process)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return {"url": shown, "seconds": config.seconds, "concurrency": users, **figures}


async def _port(process: asyncio.subprocess.Process, log: Path) -> int:
    line = b""
    if process.stdout is not None:
        with contextlib.suppress(TimeoutError):
            line = await asyncio.wait_for(process.stdout.readline(), _START_TIMEOUT)
    try:
        port = int(json.loads(line)["port"])
    except (ValueError, KeyError, TypeError):
        raise RealServerError(f"the bench server did not start: {_tail(log)}") from None
    return port


async def _ready(http: Any, process: asyncio.subprocess.Process, log: Path) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if process.returncode is not None:
            break
        with contextlib.suppress(Exception):
            if (await http.get("/bench/stats")).status_code == 200:
                return
        await asyncio.sleep(0.1)
    raise RealServerError(f"the bench server did not become ready: {_tail(log)}")


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), _STOP_TIMEOUT)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()


def _tail(log: Path) -> str:
    try:
        lines = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return lines[-1][:300] if lines else "(no output)"


async def _compare(
    http: Any, config: BenchConfig, progress: Progress, password: str
) -> dict[str, Any]:
    users = config.concurrency
    tokens: list[str] = []
    sessions: list[str] = []
    for number in range(users):
        form = {"username": f"bench-{number}", "password": password}
        answer = await http.post(
            "/oauth/token", data={**form, "grant_type": "password", "client_id": "bench"}
        )
        if answer.status_code != 200:
            raise RealServerError(f"password login failed with HTTP {answer.status_code}")
        tokens.append(answer.json()["access_token"])
        answer = await http.post("/bench/session/login", json=form)
        if answer.status_code != 200:
            raise RealServerError(f"session login failed with HTTP {answer.status_code}")
        sessions.append(answer.json()["session"])
    session_requests = [
        ("/bench/session/me", {"cookie": f"session={sid}"}, len(sid)) for sid in sessions
    ]
    jwt_requests = [
        ("/bench/jwt/me", {"authorization": f"Bearer {token}"}, len(token)) for token in tokens
    ]
    modes = []
    for key, label, requests in (
        ("sessions", "server sessions", session_requests),
        ("jwt", "JWT", jwt_requests),
    ):
        modes.append(await _phase(http, config.seconds, (key, label), requests, progress))
    return {"modes": modes}


async def _phase(
    http: Any,
    seconds: float,
    mode: tuple[str, str],
    requests: list[tuple[str, dict[str, str], int]],
    progress: Progress,
) -> dict[str, Any]:
    key, label = mode
    before = (await http.get("/bench/stats")).json()
    latencies: list[float] = []
    counts = {"ok": 0, "failed": 0, "credential_bytes": 0}
    progress.start(f"real: {label}", int(seconds * 1000))
    started = time.perf_counter()
    deadline = started + seconds
    cpu = time.process_time()
    perf = time.perf_counter

    async def client(path: str, headers: dict[str, str], size: int) -> None:
        while True:
            began = perf()
            if began >= deadline:
                return
            answer = await http.get(path, headers=headers)
            latencies.append(perf() - began)
            if answer.status_code == 200:
                counts["ok"] += 1
                counts["credential_bytes"] += size
            else:
                counts["failed"] += 1
            progress.update(int((perf() - started) * 1000))

    await asyncio.gather(*(client(*request) for request in requests))
    wall = time.perf_counter() - started
    client_cpu = time.process_time() - cpu
    after = (await http.get("/bench/stats")).json()
    total = counts["ok"] + counts["failed"]
    operations = int(after["operations"]) - int(before["operations"])
    server_cpu = float(after["cpu_seconds"]) - float(before["cpu_seconds"])
    stride = sample_every(len(latencies))
    result = {
        "mode": key,
        "label": label,
        "requests": total,
        "served": counts["ok"],
        "failed": counts["failed"],
        "wall_seconds": round(wall, 3),
        "requests_per_second": round(total / wall, 1) if wall > 0 else 0.0,
        "latency": summarize_latencies(latencies[::stride]),
        "store_operations": operations,
        "store_operations_per_1000_requests": round(operations / total * 1000, 3) if total else 0,
        "server_cpu_us_per_request": round(server_cpu / total * 1e6, 1) if total else 0.0,
        "client_cpu_us_per_request": round(client_cpu / total * 1e6, 1) if total else 0.0,
        "credential_bytes_per_request": round(counts["credential_bytes"] / counts["ok"], 1)
        if counts["ok"]
        else 0.0,
    }
    progress.finish(f"{result['requests_per_second']:,.0f} req/s, {operations:,} store operations")
    return result
