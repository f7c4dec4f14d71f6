"""Auth-server benchmark: the real server over loopback, against the framework's own floor.

Run from the repository root::

    .venv/bin/python benchmarks/server.py                  # full run (about 2-3 minutes)
    .venv/bin/python benchmarks/server.py --quick          # smoke test (seconds)
    .venv/bin/python benchmarks/server.py --json server.json

What runs:

* the auth server, exactly as ``tokenward serve`` runs it: ``tokenward.server.create_app``
  under uvicorn with the same options (``proxy_headers=False``, ``server_header=False``,
  graceful shutdown, log level ``--log-level``, default INFO like ``tokenward serve``,
  which includes uvicorn's access log), in a subprocess on 127.0.0.1 and a free port,
  on a SQLite store in a temporary directory, with the DEFAULT argon2id parameters;
* the floor: a minimal Starlette app (one route answering a small JSON document, no
  authentication) served the same way by the same launcher;
* both server processes pinned to one core (``taskset -c``), the load generator (this
  process) pinned to the other.

The load generator is a raw asyncio HTTP/1.1 keep-alive client written for this: the
requests are prebuilt bytes (or built with one ``urlencode``), responses are framed by
``Content-Length`` and only the refresh responses are parsed (to chain the tokens). It
keeps ``--connections`` connections busy, one request in flight on each. Every response
must be a 200 with the expected body, or the run stops.

What is measured, per scenario and round: requests per second, latency p50/p99, and the
server's CPU per request, read from ``/proc/<pid>/stat`` (utime + stime of every thread)
before and after the window, divided by the requests answered in it:

* ``minimal``: ``GET /hello`` on the minimal app;
* ``userinfo``: ``GET /userinfo`` with a valid access token (each connection sends its
  own token every time, as a client does; the server's verified-token cache answers
  after the first request);
* ``refresh``: ``POST /oauth/token`` with ``grant_type=refresh_token``; each connection
  holds one session and chains: every request presents the refresh token of the
  previous response, so every request is a real rotation;
* ``login``: ``POST /oauth/token`` with ``grant_type=password``, argon2id with the
  default parameters (``--login-connections`` connections; argon2 bounds it).

And in this process, in the same rounds (CPU time on the generator's core, with the
servers idle): the signature work of a refresh (one ES256 verify with the refresh
claim checks, two ES256 signs, through ``tokenward.jose``, of claims shaped like the
server's own tokens), one store round trip (``SQLiteStore.rotate`` on its own file, one
rotation of a chain), and one argon2id verification with the default parameters.

The target (issue 4): a refresh costs no more server CPU than 1.3 times the sum of the
minimal endpoint, the signature work and one store round trip, all from the same run.

Is the generator the bottleneck? Each window reports the generator's own CPU use (this
process, as a share of one core) and the server's; with the server at ~100% of its core
and the generator well below 100% of its own, the server is what limits. Where ``wrk``
is installed, a full run also drives the minimal endpoint with ``wrk`` for one window as a
cross-check: if our client were the limit, ``wrk`` would get more requests per second.

Rounds are interleaved (each round runs every scenario once, starting one further along
each round); figures are medians over rounds, latency percentiles are over all requests.
Ctrl-C stops the run and still stops the servers and removes the temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import hashlib
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlencode

# Run as a script, this file's folder is on sys.path but the repository root is not.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._http import BenchmarkError, HttpConnection, free_port
from benchmarks._process import Child, spawn

SCENARIOS = ("minimal", "userinfo", "refresh", "login")
IN_PROCESS = ("signature", "store", "service", "argon2")
USERNAME = "bench"
PASSWORD = "correct horse battery staple"
CLIENT_ID = "default"
TARGET = 1.3
_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


# -- the server processes ---------------------------------------------------------------------


def serve(kind: str, port: int, store: str, log_level: str) -> None:
    """Child process: serve ``kind`` (``tokenward`` or ``minimal``) like ``tokenward serve``."""
    import uvicorn

    from tokenward.server import configure_logging, create_app

    configure_logging(log_level)
    if kind == "tokenward":
        app: Any = create_app(server_settings(port, store, log_level))
    else:
        app = minimal_app()
    # The options of tokenward.cli._serve._server, so both apps are served the same way.
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level=log_level.lower(),
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=10,
    )
    server = uvicorn.Server(config)

    def stop(signum: int, frame: FrameType | None) -> None:
        server.should_exit = True

    # As tokenward serve does: uvicorn re-raises the signal that stopped it under the
    # handlers it found; these make that a no-op, so a graceful stop exits with status 0.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)
    server.run()


def minimal_app() -> Any:
    """The floor: one Starlette route answering a small JSON document, no authentication."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def hello(request: Request) -> JSONResponse:
        return JSONResponse({"hello": "world", "ok": True})

    return Starlette(routes=[Route("/hello", hello, methods=["GET"])])


def server_settings(port: int, store: str, log_level: str) -> Any:
    """The auth server's settings: defaults (argon2 included) but host, port and store."""
    from tokenward.server import load_settings

    return load_settings(
        overrides={"host": "127.0.0.1", "port": port, "store": store, "log_level": log_level}
    )


@dataclass
class ServerProcess(Child):
    """A server subprocess (``name`` is ``tokenward`` or ``minimal``) and its port."""

    port: int


def start_server(
    kind: str, port: int, store: str, *, log_level: str, cpu: int | None, tmp: Path
) -> ServerProcess:
    """Start a server subprocess (in its own session, so Ctrl-C reaches only us).

    With ``taskset`` it is pinned from its first instruction (taskset execs, so the pid
    is the Python process); without, right after it starts.
    """
    argv = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--serve",
        kind,
        "--port",
        str(port),
        "--store",
        store,
        "--log-level",
        log_level,
    ]
    taskset = shutil.which("taskset")
    if cpu is not None and taskset:
        argv = [taskset, "-c", str(cpu), *argv]
    child = spawn(f"server-{kind}", argv, tmp, None if taskset else cpu)
    return ServerProcess(kind, child.process, child.log, port)


async def wait_ready(server: ServerProcess, path: str, timeout: float = 60.0) -> None:
    """Wait until the server answers ``GET path`` with 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise BenchmarkError(
                f"the {server.name} server exited (status {server.process.returncode}):\n"
                + server.log_tail()
            )
        try:
            conn = await HttpConnection.open(server.port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        try:
            status, _ = await asyncio.wait_for(conn.request(get(path, server.port)), timeout=10)
        finally:
            conn.close()
        if status == 200:
            return
        await asyncio.sleep(0.1)
    raise BenchmarkError(f"the {server.name} server did not answer within {timeout:g} s")


def process_cpu(pid: int) -> float:
    """utime + stime of process ``pid`` (all its threads, dead ones included), seconds."""
    with open(f"/proc/{pid}/stat", "rb") as stat:
        fields = stat.read().rpartition(b")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def core_times(cpu: int | None) -> tuple[float, float]:
    """(busy, total) jiffies of core ``cpu`` from /proc/stat; (0, 0) if unknown."""
    if cpu is None:
        return 0.0, 0.0
    try:
        text = Path("/proc/stat").read_text()
    except OSError:
        return 0.0, 0.0
    for line in text.splitlines():
        if line.startswith(f"cpu{cpu} "):
            values = [float(v) for v in line.split()[1:9]]
            idle = values[3] + values[4]  # idle + iowait
            return sum(values) - idle, sum(values)
    return 0.0, 0.0


# -- the load generator -------------------------------------------------------------------


def get(path: str, port: int, headers: str = "") -> bytes:
    """A minimal GET request."""
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{headers}\r\n".encode()


def post_form(path: str, port: int, form: dict[str, str]) -> bytes:
    """A minimal form POST."""
    body = urlencode(form).encode()
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


@dataclass
class Chains:
    """Per-connection tokens: each connection's session, advanced by every refresh."""

    access: list[str]
    refresh: list[str]


class Scenario:
    """Requests for one scenario and the check of their responses, per connection."""

    name = ""
    path = ""

    def __init__(self, port: int, chains: Chains) -> None:
        self.port = port
        self.chains = chains

    def request(self, i: int) -> bytes:
        """The next request of connection ``i``."""
        raise NotImplementedError

    def response(self, i: int, status: int, body: bytes) -> None:
        """Check (and use) a response of connection ``i``; raise on anything but success."""
        if status != 200:
            raise BenchmarkError(f"{self.name}: HTTP {status}: {body[:300]!r}")


class Minimal(Scenario):
    """``GET /hello`` on the minimal app."""

    name = "minimal"
    path = "/hello"

    def __init__(self, port: int, chains: Chains) -> None:
        super().__init__(port, chains)
        self._request = get(self.path, port)

    def request(self, i: int) -> bytes:
        """The same bytes every time."""
        return self._request

    def response(self, i: int, status: int, body: bytes) -> None:
        """200 and the expected document."""
        if status != 200 or b'"hello"' not in body:
            raise BenchmarkError(f"minimal: HTTP {status}: {body[:300]!r}")


class UserInfo(Scenario):
    """``GET /userinfo`` with each connection's current access token."""

    name = "userinfo"
    path = "/userinfo"

    def __init__(self, port: int, chains: Chains) -> None:
        super().__init__(port, chains)
        self._requests = [
            get(self.path, port, f"Authorization: Bearer {token}\r\n") for token in chains.access
        ]

    def request(self, i: int) -> bytes:
        """The same bytes for one connection (a client reuses its token)."""
        return self._requests[i]

    def response(self, i: int, status: int, body: bytes) -> None:
        """200 and our user's name."""
        if status != 200 or f'"username":"{USERNAME}"'.encode() not in body.replace(b" ", b""):
            raise BenchmarkError(f"userinfo: HTTP {status}: {body[:300]!r}")


class Refresh(Scenario):
    """``POST /oauth/token`` grant_type=refresh_token, chained per connection."""

    name = "refresh"
    path = "/oauth/token"

    def request(self, i: int) -> bytes:
        """Present connection ``i``'s current refresh token."""
        form = {
            "grant_type": "refresh_token",
            "refresh_token": self.chains.refresh[i],
            "client_id": CLIENT_ID,
        }
        return post_form(self.path, self.port, form)

    def response(self, i: int, status: int, body: bytes) -> None:
        """200 with a new pair; keep it for the next request."""
        if status != 200:
            raise BenchmarkError(f"refresh: HTTP {status}: {body[:300]!r}")
        pair = json.loads(body)
        new = pair["refresh_token"]
        if new == self.chains.refresh[i]:
            raise BenchmarkError("refresh: the refresh token did not rotate")
        self.chains.refresh[i] = new
        self.chains.access[i] = pair["access_token"]


class Login(Scenario):
    """``POST /oauth/token`` grant_type=password (argon2id, default parameters)."""

    name = "login"
    path = "/oauth/token"

    def __init__(self, port: int, chains: Chains) -> None:
        super().__init__(port, chains)
        form = {
            "grant_type": "password",
            "username": USERNAME,
            "password": PASSWORD,
            "client_id": CLIENT_ID,
        }
        self._request = post_form(self.path, port, form)

    def request(self, i: int) -> bytes:
        """The same bytes every time."""
        return self._request

    def response(self, i: int, status: int, body: bytes) -> None:
        """200 with tokens."""
        if status != 200 or b'"refresh_token"' not in body:
            raise BenchmarkError(f"login: HTTP {status}: {body[:300]!r}")


@dataclass
class Window:
    """One scenario driven for one window."""

    requests: int
    elapsed: float
    server_cpu: float
    generator_cpu: float
    server_core_busy: float  # share of the server's core busy with anything, 0..1
    latencies: list[float]

    @property
    def rps(self) -> float:
        """Requests per second."""
        return self.requests / self.elapsed

    @property
    def cpu_per_request_us(self) -> float:
        """Server CPU per request, microseconds."""
        return self.server_cpu / self.requests * 1e6

    @property
    def server_share(self) -> float:
        """Server CPU as a share of one core over the window."""
        return self.server_cpu / self.elapsed

    @property
    def generator_share(self) -> float:
        """This process's CPU as a share of one core over the window."""
        return self.generator_cpu / self.elapsed


async def drive(
    scenario: Scenario,
    server: ServerProcess,
    connections: int,
    seconds: float,
    server_cpu_index: int | None,
) -> Window:
    """Keep ``connections`` connections busy for ``seconds``; measure what it cost."""
    conns = [await HttpConnection.open(server.port) for _ in range(connections)]
    await asyncio.sleep(0.05)  # let the server finish accepting before the snapshot
    latencies: list[float] = []
    perf = time.perf_counter

    async def worker(i: int, conn: HttpConnection, deadline: float) -> int:
        done = 0
        record = latencies.append
        while perf() < deadline:
            data = scenario.request(i)
            start = perf()
            status, body = await conn.request(data)
            record(perf() - start)
            scenario.response(i, status, body)
            done += 1
        return done

    gc.collect()
    try:
        busy0, total0 = core_times(server_cpu_index)
        server0 = process_cpu(server.pid)
        gen0 = time.process_time()
        start = perf()
        counts = await asyncio.gather(*(worker(i, c, start + seconds) for i, c in enumerate(conns)))
        elapsed = perf() - start
        gen1 = time.process_time()
        server1 = process_cpu(server.pid)
        busy1, total1 = core_times(server_cpu_index)
    finally:
        for conn in conns:
            conn.close()
    await asyncio.sleep(0.05)  # connection teardown stays out of the next window
    core_busy = (busy1 - busy0) / (total1 - total0) if total1 > total0 else math.nan
    return Window(sum(counts), elapsed, server1 - server0, gen1 - gen0, core_busy, latencies)


# -- in-process components ------------------------------------------------------------------


@dataclass
class Components:
    """The in-process measurements: signature work, one store round trip, one argon2."""

    signature: Callable[[], None]
    store_batch: Callable[[int], Any]  # async: n rotations, returns CPU seconds
    service_batch: Callable[[int], Any]  # async: n TokenService.refresh, returns CPU seconds
    argon2: Callable[[], bool]


def signature_work(access_token: str, refresh_token: str, issuer: str, audience: str) -> Any:
    """One ES256 verify (refresh claim rules) + two ES256 signs, via tokenward.jose."""
    from tokenward.jose import ClaimRules, Key, jwt

    key = Key.generate("ES256", kid="bench")
    access_claims = jwt.inspect_unverified(access_token).claims
    refresh_claims = jwt.inspect_unverified(refresh_token).claims
    rules = ClaimRules.create(
        issuer=issuer, audience=(issuer, audience), require=("exp", "iat", "sub", "sid", "jti")
    )
    presented = jwt.encode(refresh_claims, key, typ="rt+jwt")
    now = float(refresh_claims["iat"])
    algorithms = ("ES256",)

    def work() -> None:
        jwt.decode_with_header(presented, key, algorithms=algorithms, rules=rules, now=now)
        jwt.encode(access_claims, key, typ="at+jwt")
        jwt.encode(refresh_claims, key, typ="rt+jwt")

    return work


async def store_rotations(path: Path, sealed_size: int) -> tuple[Any, Callable[[int], Any]]:
    """An SQLite store on its own file and a chain of rotations of one session.

    Returns the store (to close) and ``batch(n)``, which makes ``n`` rotations and
    returns the process CPU seconds they took (the store's worker thread included).
    """
    from tokenward.stores import NewSession, Rotation
    from tokenward.stores.sqlite import SQLiteStore

    store = await SQLiteStore.open(path)
    now = time.time()
    sid = secrets.token_urlsafe(16)

    def digest(generation: int) -> bytes:
        return hashlib.sha256(f"{sid}:{generation}".encode()).digest()

    await store.create_session(
        NewSession(
            sid=sid, sub="u-bench", created_at=now, idle_expires_at=now + 14 * 86400,
            absolute_expires_at=now + 30 * 86400, refresh_hash=digest(0), scope="read",
            client_id=CLIENT_ID, user_agent="bench/1.0", ip="127.0.0.1",
        )
    )  # fmt: skip
    state = {"generation": 0}

    async def batch(n: int) -> float:
        first = state["generation"]
        t = time.time()
        rotations = [
            Rotation(
                sid=sid, generation=g, presented_hash=digest(g), successor_hash=digest(g + 1),
                successor_sealed=os.urandom(sealed_size), now=t, idle_expires_at=t + 14 * 86400,
                grace=10.0, event_expires_at=t + 900,
            )
            for g in range(first, first + n)
        ]  # fmt: skip
        ops = store.operations
        gc.disable()
        try:
            cpu0 = time.process_time()
            for rotation in rotations:
                result = await store.rotate(rotation)
            cpu = time.process_time() - cpu0
        finally:
            gc.enable()
        if result.status.value != "rotated" or store.operations - ops != n:
            raise BenchmarkError(f"store rotate: {result.status}, {store.operations - ops} ops")
        state["generation"] = first + n
        return cpu

    return store, batch


async def service_refreshes(path: Path, settings: Any) -> tuple[Any, Callable[[int], Any]]:
    """``TokenService.refresh`` on an SQLite store of its own file, chained (no HTTP).

    Returns the store (to close) and ``batch(n)``: ``n`` refreshes, their CPU seconds.
    """
    from tokenward.service import Client, TokenService
    from tokenward.stores.sqlite import SQLiteStore

    store = await SQLiteStore.open(path)
    service = await TokenService.create(store, settings.token_policy())
    pair = await service.issue(
        "u-bench",
        scope="read write",
        client=Client(CLIENT_ID, user_agent="bench/1.0", ip="127.0.0.1"),
        claims={"preferred_username": USERNAME},
    )
    current = [pair.refresh_token]

    async def batch(n: int) -> float:
        ops = store.operations
        gc.disable()
        try:
            cpu0 = time.process_time()
            for _ in range(n):
                current[0] = (await service.refresh(current[0])).refresh_token
            cpu = time.process_time() - cpu0
        finally:
            gc.enable()
        if store.operations - ops != n:
            raise BenchmarkError(f"service refresh: {store.operations - ops} ops for {n}")
        return cpu

    return store, batch


def cpu_batch(fn: Callable[[], object], n: int) -> float:
    """CPU seconds (this process, every thread) of ``n`` calls of ``fn``, GC off."""
    gc.disable()
    try:
        start = time.process_time()
        for _ in range(n):
            fn()
        return time.process_time() - start
    finally:
        gc.enable()


# -- setup ----------------------------------------------------------------------------------


async def prepare_store(settings: Any, path: Path, sessions: int) -> tuple[Chains, int]:
    """Create the user (default argon2) and one session per connection, before the server
    starts, through the store and the services the server itself uses.

    Returns the per-connection tokens and the size of a sealed successor.
    """
    from tokenward.service import Client, PasswordHasher, TokenService, UserService
    from tokenward.stores.sqlite import SQLiteStore

    store = await SQLiteStore.open(path)
    try:
        tokens = await TokenService.create(store, settings.token_policy())
        users = UserService(store, tokens, hasher=PasswordHasher(settings.argon2()))
        user = await users.create_user(USERNAME, PASSWORD, scopes=["read", "write"])
        client = Client(CLIENT_ID, user_agent="bench/1.0", ip="127.0.0.1")
        access, refresh = [], []
        for _ in range(sessions):
            pair = await tokens.issue(
                user.sub,
                scope=users.granted_scopes(user, None),
                client=client,
                claims={"preferred_username": user.username},
            )
            access.append(pair.access_token)
            refresh.append(pair.refresh_token)
        # The sealed successor is the pair as six lines, AES-GCM sealed (+12+16 octets).
        plain = "\n".join(
            [pair.access_token, pair.refresh_token, str(pair.expires_in), pair.scope, pair.sid,
             str(pair.refresh_expires_at)]
        )  # fmt: skip
        return Chains(access, refresh), len(plain) + 28
    finally:
        await store.close()


# -- reporting ------------------------------------------------------------------------------


def versions() -> dict[str, str]:
    """Versions of Python, OpenSSL, the web stack and tokenward's sources."""
    from cryptography.hazmat.backends.openssl.backend import backend

    found = {
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "openssl": backend.openssl_version_text(),
    }
    for dist in (
        "tokenward", "cryptography", "argon2-cffi", "starlette", "uvicorn", "h11",
        "httptools", "uvloop",
    ):  # fmt: skip
        try:
            found[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            found[dist] = "not installed"
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    found["uvicorn uses"] = f"loop={loop}, http={http} (its 'auto' choice here)"
    found["sqlite"] = __import__("sqlite3").sqlite_version
    found["wrk"] = wrk_version() or "not installed"
    found["source"] = source_fingerprint()
    return found


def wrk_version() -> str | None:
    """``wrk -v``'s first line, or None when wrk is not installed."""
    wrk = shutil.which("wrk")
    if not wrk:
        return None
    out = subprocess.run(  # noqa: S603 - fixed argv
        [wrk, "-v"], capture_output=True, text=True, check=False, timeout=10
    )
    text = (out.stdout + out.stderr).strip().splitlines()
    return text[0] if text else "unknown"


def source_fingerprint() -> str:
    """A short hash of the sources these figures measured."""
    import tokenward

    root = Path(tokenward.__file__).parent
    digest = hashlib.sha256()
    for sub in ("jose", "service", "stores", "server"):
        for path in sorted((root / sub).glob("*.py")):
            digest.update(f"{sub}/{path.name}".encode() + b"\0" + path.read_bytes())
    return f"sha256:{digest.hexdigest()[:12]} (tokenward/{{jose,service,stores,server}})"


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def percentile(data: Sequence[float], q: float) -> float:
    """Interpolated quantile ``q`` of ``data``."""
    ordered = sorted(data)
    if not ordered:
        return math.nan
    pos = q * (len(ordered) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclass
class Results:
    """Everything measured, per round."""

    windows: dict[str, list[Window]] = field(default_factory=dict)
    in_process_us: dict[str, list[float]] = field(default_factory=dict)  # CPU us per call

    def cpu_us(self, name: str) -> float:
        """Median over rounds of the CPU per request / call, microseconds."""
        if name in self.windows:
            return statistics.median(w.cpu_per_request_us for w in self.windows[name])
        return statistics.median(self.in_process_us[name])

    def per_round(self, name: str) -> list[float]:
        """CPU per request / call of each round, microseconds."""
        if name in self.windows:
            return [w.cpu_per_request_us for w in self.windows[name]]
        return self.in_process_us[name]


def print_http_table(results: Results, connections: dict[str, int]) -> list[dict[str, Any]]:
    """Per scenario: rps, latency, server CPU per request, CPU shares."""
    print(
        "\nHTTP over loopback  (medians over rounds; p50/p99 over every request of the"
        " scenario; server pinned to one core, generator to the other)"
    )
    print(
        f"  {'scenario':<9} {'conns':>5} {'requests':>8} {'req/s':>8} {'p50 ms':>7}"
        f" {'p99 ms':>7} {'server CPU us/req':>17} {'p25..p75':>15} {'req/s/core':>10}"
        f" {'server %':>8} {'core %':>6} {'gen %':>5}"
    )
    rows = []
    for name in SCENARIOS:
        windows = results.windows.get(name)
        if not windows:
            continue
        lat = [x for w in windows for x in w.latencies]
        cpu = [w.cpu_per_request_us for w in windows]
        row = {
            "scenario": name,
            "connections": connections[name],
            "requests": sum(w.requests for w in windows),
            "rps": statistics.median(w.rps for w in windows),
            "p50_ms": percentile(lat, 0.5) * 1e3,
            "p99_ms": percentile(lat, 0.99) * 1e3,
            "server_cpu_us_per_request": statistics.median(cpu),
            "server_cpu_p25_us": percentile(cpu, 0.25),
            "server_cpu_p75_us": percentile(cpu, 0.75),
            "rps_per_core": 1e6 / statistics.median(cpu),
            "server_share": statistics.median(w.server_share for w in windows),
            "server_core_busy": statistics.median(w.server_core_busy for w in windows),
            "generator_share": statistics.median(w.generator_share for w in windows),
            "rounds": [
                {
                    "requests": w.requests,
                    "elapsed_s": w.elapsed,
                    "server_cpu_s": w.server_cpu,
                    "generator_cpu_s": w.generator_cpu,
                    "server_core_busy": w.server_core_busy,
                    "rps": w.rps,
                    "cpu_per_request_us": w.cpu_per_request_us,
                }
                for w in windows
            ],
        }
        spread = f"{row['server_cpu_p25_us']:.0f}..{row['server_cpu_p75_us']:.0f}"
        print(
            f"  {name:<9} {row['connections']:>5} {row['requests']:>8} {row['rps']:>8.0f}"
            f" {row['p50_ms']:>7.2f} {row['p99_ms']:>7.2f}"
            f" {row['server_cpu_us_per_request']:>17.0f} {spread:>15}"
            f" {row['rps_per_core']:>10.0f} {row['server_share']:>7.0%}"
            f" {row['server_core_busy']:>6.0%} {row['generator_share']:>5.0%}"
        )
        rows.append(row)
    print(
        "  req/s/core = 1e6 / server CPU us per request: what the server would answer with a"
        " whole core to itself; server % = server process CPU / wall time; core % = the"
        " server's core busy with anything (other processes included); gen % = this load"
        " generator's CPU / wall"
    )
    return rows


def generator_verdict(rows: list[dict[str, Any]]) -> list[str]:
    """Say, per scenario, whether the server or the generator was the limit."""
    lines = []
    for row in rows:
        server, core, gen = row["server_share"], row["server_core_busy"], row["generator_share"]
        if gen >= 0.85:
            verdict = "WARNING: the generator used most of its core; it may be the limit"
        elif server >= 0.85:
            verdict = "server-bound (server core saturated, generator well below one core)"
        elif core >= 0.9:
            verdict = (
                "server-bound, but other processes took part of the server's core"
                f" ({core - server:.0%}); req/s is low for it, CPU per request is not"
            )
        else:
            verdict = "neither core saturated: latency-bound (more connections would help)"
        lines.append(f"{row['scenario']}: {verdict}")
    return lines


def print_breakdown(results: Results) -> dict[str, Any]:
    """The refresh breakdown and the issue-4 target."""
    minimal = results.cpu_us("minimal")
    sig = results.cpu_us("signature")
    store = results.cpu_us("store")
    refresh = results.cpu_us("refresh")
    parts = minimal + sig + store
    ratio = refresh / parts
    paired = statistics.median(
        r / (m + s + t)
        for r, m, s, t in zip(
            results.per_round("refresh"),
            results.per_round("minimal"),
            results.per_round("signature"),
            results.per_round("store"),
            strict=True,
        )
    )
    service = results.cpu_us("service")

    def line(label: str, value: float, note: str = "") -> None:
        print(f"  {label:<64} {value:>8.0f}  {note}".rstrip())

    print("\nBreakdown of a refresh: CPU per request or call, us (medians over rounds)")
    line("minimal endpoint (same server stack, no auth), server CPU", minimal)
    line("signature work (1 ES256 verify + 2 ES256 signs), in-process", sig)
    line("one store round trip (SQLiteStore.rotate), in-process", store)
    line("sum", parts)
    line("refresh (POST /oauth/token, refresh_token), server CPU", refresh)
    line("rest = refresh - sum", refresh - parts, "of which, roughly:")
    line(
        "  service: TokenService.refresh in-process - sig - store",
        service - sig - store,
        "(sealing, hashes, claims, ids)",
    )
    line(
        "  HTTP: refresh - TokenService.refresh in-process - minimal",
        refresh - service - minimal,
        "(POST form, client auth, bigger request and response)",
    )
    out: dict[str, Any] = {
        "minimal_us": minimal,
        "signature_us": sig,
        "store_round_trip_us": store,
        "service_refresh_in_process_us": service,
        "sum_us": parts,
        "refresh_us": refresh,
        "ratio": ratio,
        "paired_ratio": paired,
        "limit": TARGET,
        "passed": ratio <= TARGET,
    }
    if "userinfo" in results.windows:
        userinfo = results.cpu_us("userinfo")
        out["userinfo_us"] = userinfo
        print()
        line("userinfo (GET, bearer token), server CPU", userinfo)
        line("userinfo - minimal", userinfo - minimal, "(bearer check, cached verify, JSON)")
    if "login" in results.windows and "argon2" in results.in_process_us:
        login = results.cpu_us("login")
        argon = results.cpu_us("argon2")
        out.update(login_us=login, argon2_us=argon)
        print()
        line("login (password grant), server CPU", login)
        line("argon2id verify, default parameters, in-process", argon)
        print(f"  login / argon2id verify = {login / argon:.2f}x: argon2 is nearly all of a login")
    return out


# -- the run --------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="one short round (a smoke test)")
    parser.add_argument("--json", metavar="OUT", type=Path, help="write every figure to OUT")
    parser.add_argument("--reps", type=int, help="interleaved rounds (default 7; quick 1)")
    parser.add_argument(
        "--window", type=float, help="seconds per HTTP scenario and round (default 3; quick 0.5)"
    )
    parser.add_argument(
        "--login-window", type=float, help="seconds per login window (default 6; quick 1)"
    )
    parser.add_argument("--connections", type=int, default=16, help="connections (default 16)")
    parser.add_argument(
        "--login-connections", type=int, default=2, help="connections for logins (default 2)"
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="servers' log level (default INFO, as tokenward serve: uvicorn's access log on)",
    )
    parser.add_argument("--server-cpu", type=int, help="core for the servers (default: 2nd)")
    parser.add_argument("--no-wrk", action="store_true", help="skip the wrk cross-check")
    parser.add_argument("--strict", action="store_true", help="exit 1 if the target FAILs")
    # Child mode: serve one app (used by this script to start its servers).
    parser.add_argument("--serve", choices=("tokenward", "minimal"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def pin(args: argparse.Namespace) -> tuple[int | None, int | None, str]:
    """Pin this process to one core and pick the servers' core; describe it."""
    if not hasattr(os, "sched_getaffinity"):
        return None, None, "not pinned (no sched_setaffinity here)"
    usable = sorted(os.sched_getaffinity(0))
    if len(usable) < 2:
        return None, None, f"not pinned: only core {usable} usable; figures share one core"
    server = args.server_cpu if args.server_cpu is not None else usable[1]
    client = next(c for c in usable if c != server)
    os.sched_setaffinity(0, {client})
    how = "taskset -c" if shutil.which("taskset") else "sched_setaffinity"
    return server, client, f"servers on core {server} ({how}), load generator on core {client}"


def pin_threads(cpu: int | None) -> None:
    """Move every thread of this process (the SQLite worker too) to core ``cpu``."""
    if cpu is None:
        return
    for tid in os.listdir("/proc/self/task"):
        with contextlib.suppress(ProcessLookupError):  # a thread that just ended
            os.sched_setaffinity(int(tid), {cpu})


async def run_wrk(
    server: ServerProcess, client_cpu: int | None, connections: int, seconds: float
) -> dict[str, Any] | None:
    """Drive the minimal endpoint with wrk (pinned like us); None when wrk is missing."""
    wrk = shutil.which("wrk")
    if not wrk:
        return None
    argv = [wrk, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s",
            f"http://127.0.0.1:{server.port}/hello"]  # fmt: skip
    if client_cpu is not None and shutil.which("taskset"):
        argv = [str(shutil.which("taskset")), "-c", str(client_cpu), *argv]
    cpu0 = process_cpu(server.pid)
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await proc.communicate()
    cpu1 = process_cpu(server.pid)
    text = out.decode(errors="replace")
    done = re.search(r"(\d+) requests in ([\d.]+)(\w+)", text)
    rps = re.search(r"Requests/sec:\s*([\d.]+)", text)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if proc.returncode != 0 or not done or not rps or bad:
        raise BenchmarkError(f"wrk failed:\n{text}")
    requests = int(done.group(1))
    return {
        "requests": requests,
        "rps": float(rps.group(1)),
        "server_cpu_us_per_request": (cpu1 - cpu0) / requests * 1e6,
        "output": text,
    }


@dataclass
class Plan:
    """What a run does, from the options."""

    reps: int
    window: float
    login_window: float
    connections: dict[str, int]
    warmup: float
    batches: dict[str, int]
    log_level: str
    server_cpu: int | None = None
    client_cpu: int | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Plan:
        """The plan for these options (``--quick``: one short round)."""
        quick = args.quick
        return cls(
            reps=args.reps or (1 if quick else 7),
            window=args.window or (0.5 if quick else 3.0),
            login_window=args.login_window or (1.0 if quick else 6.0),
            connections={
                "minimal": args.connections,
                "userinfo": args.connections,
                "refresh": args.connections,
                "login": args.login_connections,
            },
            warmup=0.3 if quick else 1.0,
            batches={
                "signature": 30 if quick else 300,
                "store": 30 if quick else 300,
                "service": 20 if quick else 200,
                "argon2": 1 if quick else 3,
            },
            log_level=args.log_level,
        )


@dataclass
class Bench:
    """The started servers, the scenarios on them and the in-process components."""

    servers: list[ServerProcess] = field(default_factory=list)
    scenarios: dict[str, tuple[Scenario, ServerProcess]] = field(default_factory=dict)
    components: Components | None = None
    closers: list[Callable[[], Any]] = field(default_factory=list)  # async, at cleanup


async def setup(plan: Plan, tmp: Path, bench: Bench) -> None:
    """Create the store, start both servers, build the scenarios and components.

    Fills ``bench`` as it goes, so that a failure half-way still cleans up.
    """
    from tokenward.service import PasswordHasher

    port = free_port()
    db = tmp / "auth.db"
    store_url = f"sqlite:///{db}"
    settings = server_settings(port, store_url, plan.log_level)
    argon = settings.argon2()
    print(
        f"  {'auth server':<13} http://127.0.0.1:{port}, store {store_url},"
        f" argon2id t={argon.time_cost} m={argon.memory_cost} KiB p={argon.parallelism}"
        " (the defaults)"
    )
    chains, sealed_size = await prepare_store(settings, db, max(plan.connections.values()))
    tw = start_server(
        "tokenward", port, store_url, log_level=plan.log_level, cpu=plan.server_cpu, tmp=tmp
    )
    bench.servers.append(tw)
    minimal_port = free_port()
    floor = start_server(
        "minimal", minimal_port, "", log_level=plan.log_level, cpu=plan.server_cpu, tmp=tmp
    )
    bench.servers.append(floor)
    await wait_ready(tw, "/.well-known/jwks.json")
    await wait_ready(floor, "/hello")
    if plan.server_cpu is not None:
        pinned = {s.name: sorted(os.sched_getaffinity(s.pid)) for s in bench.servers}
        mine = sorted(os.sched_getaffinity(0))
        print(f"  {'affinity':<13} servers {pinned}, generator {mine} (read back)")
    bench.scenarios = {
        "minimal": (Minimal(minimal_port, chains), floor),
        "userinfo": (UserInfo(port, chains), tw),
        "refresh": (Refresh(port, chains), tw),
        "login": (Login(port, chains), tw),
    }
    hasher = PasswordHasher(argon)
    password_hash = hasher.hash(PASSWORD)
    store, store_batch = await store_rotations(tmp / "inprocess.db", sealed_size)
    bench.closers.append(store.close)
    service_store, service_batch = await service_refreshes(tmp / "service.db", settings)
    bench.closers.append(service_store.close)
    bench.components = Components(
        signature=signature_work(
            chains.access[0], chains.refresh[0], settings.issuer, settings.audience
        ),
        store_batch=store_batch,
        service_batch=service_batch,
        argon2=lambda: hasher.verify(password_hash, PASSWORD),
    )


async def measure(plan: Plan, bench: Bench) -> Results:
    """Warm up, then the interleaved rounds."""
    components = bench.components
    assert components is not None
    # Warm-up: every scenario once (lazy imports, caches, first-use paths); not counted.
    for name, (scenario, server) in bench.scenarios.items():
        await drive(scenario, server, plan.connections[name], plan.warmup, plan.server_cpu)
    components.signature()
    await components.store_batch(5)
    await components.service_batch(5)

    results = Results()
    order = [*SCENARIOS, *IN_PROCESS]
    for rep in range(plan.reps):
        for name in order[rep % len(order) :] + order[: rep % len(order)]:
            if name in bench.scenarios:
                scenario, server = bench.scenarios[name]
                seconds = plan.login_window if name == "login" else plan.window
                window = await drive(
                    scenario, server, plan.connections[name], seconds, plan.server_cpu
                )
                results.windows.setdefault(name, []).append(window)
                continue
            n = plan.batches[name]
            # On the servers' core (idle now), so that these CPU times and the servers'
            # are taken under the same conditions; then back to the generator's core.
            pin_threads(plan.server_cpu)
            try:
                if name == "store":
                    cpu = await components.store_batch(n)
                elif name == "service":
                    cpu = await components.service_batch(n)
                elif name == "signature":
                    cpu = cpu_batch(components.signature, n)
                else:
                    cpu = cpu_batch(components.argon2, n)
            finally:
                pin_threads(plan.client_cpu)
            results.in_process_us.setdefault(name, []).append(cpu / n * 1e6)
        print(f"  round {rep + 1}/{plan.reps} done (load avg {_load()})")
    return results


async def report_results(
    args: argparse.Namespace, plan: Plan, bench: Bench, results: Results, report: dict[str, Any]
) -> bool:
    """Print the tables, the generator check, the breakdown and the target; True if PASS."""
    report["http"] = rows = print_http_table(results, plan.connections)
    report["in_process"] = {
        name: {"cpu_us_median": results.cpu_us(name), "per_round_us": results.per_round(name),
               "calls_per_round": plan.batches[name]}
        for name in IN_PROCESS
    }  # fmt: skip
    print(
        "  in-process (this process moved to the servers' core while they idle; CPU per call,"
        " median):"
        f" signature work {results.cpu_us('signature'):.0f} us,"
        f" SQLite rotate {results.cpu_us('store'):.0f} us,"
        f" TokenService.refresh on SQLite {results.cpu_us('service'):.0f} us,"
        f" argon2id verify {results.cpu_us('argon2') / 1000:.0f} ms"
    )
    print("\nIs the load generator the bottleneck?")
    verdicts = generator_verdict(rows)
    for line in verdicts:
        print(f"  {line}")
    report["generator_check"] = verdicts
    if not args.quick and not args.no_wrk:
        floor = bench.scenarios["minimal"][1]
        cross = await run_wrk(floor, plan.client_cpu, args.connections, plan.window)
        if cross is None:
            print("  wrk cross-check: wrk is not installed (apt-get install wrk)")
        else:
            ours = next(r for r in rows if r["scenario"] == "minimal")
            print(
                f"  wrk cross-check on the minimal endpoint ({args.connections} connections,"
                f" one window): wrk {cross['rps']:.0f} req/s at"
                f" {cross['server_cpu_us_per_request']:.0f} us server CPU/req; ours"
                f" {ours['rps']:.0f} req/s at {ours['server_cpu_us_per_request']:.0f} us"
                f" (wrk / ours = {cross['rps'] / ours['rps']:.2f}x req/s)"
            )
            report["wrk_cross_check"] = cross

    breakdown = print_breakdown(results)
    report["target"] = breakdown
    verdict = "PASS" if breakdown["passed"] else "FAIL"
    print("\nTarget  (x = ratio of medians; paired = median of per-round ratios)")
    print(
        f"  {verdict}  refresh server CPU / (minimal + signature work + one store round"
        f" trip): {breakdown['ratio']:.2f}x (target <= {TARGET:g}x;"
        f" paired {breakdown['paired_ratio']:.2f}x)"
    )
    print(f"\nload avg at end: {_load()}")
    passed: bool = breakdown["passed"]
    return passed


async def run(args: argparse.Namespace, report: dict[str, Any]) -> int:
    """Start the servers, drive them round by round, report; always clean up."""
    plan = Plan.from_args(args)
    plan.server_cpu, plan.client_cpu, pinning = pin(args)
    report["method"] = {
        "reps": plan.reps,
        "window_s": plan.window,
        "login_window_s": plan.login_window,
        "connections": plan.connections,
        "in_process_calls_per_round": plan.batches,
        "log_level": plan.log_level,
        "pinning": pinning,
        "quick": args.quick,
    }
    print(f"  {'pinning':<13} {pinning}")
    print(
        f"  {'method':<13} {plan.reps} interleaved rounds; {plan.window:g} s per HTTP window"
        f" ({plan.login_window:g} s for login); {args.connections} keep-alive connections"
        f" ({args.login_connections} for login); log level {plan.log_level}"
    )
    tmp = Path(tempfile.mkdtemp(prefix="tokenward-server-bench-"))
    bench = Bench()
    try:
        await setup(plan, tmp, bench)
        results = await measure(plan, bench)
        passed = await report_results(args, plan, bench, results, report)
        return 1 if args.strict and not passed else 0
    finally:
        for close in bench.closers:
            await close()
        for server in bench.servers:
            note = server.stop(grace=15)  # beyond uvicorn's 10 s graceful shutdown
            print(f"cleanup: {server.name} server (pid {server.pid}) {note}")
            report.setdefault("cleanup", {})[server.name] = note
        shutil.rmtree(tmp, ignore_errors=True)
        print(f"cleanup: removed {tmp}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark (or, with the hidden --serve, one server); return the exit code."""
    args = parse_args(argv)
    if args.serve:
        serve(args.serve, args.port, args.store or "", args.log_level)
        return 0
    info = versions()
    print("tokenward auth-server benchmark")
    for name, version in info.items():
        print(f"  {name:<13} {version}")
    print(f"  {'load avg':<13} {_load()}")
    report: dict[str, Any] = {"versions": info}
    try:
        status = asyncio.run(run(args, report))
    except KeyboardInterrupt:
        print("\ninterrupted: servers stopped, temporary directory removed")
        return 130
    except BenchmarkError as exc:
        print(f"\nERROR: {exc}")
        return 2
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return status


if __name__ == "__main__":
    sys.exit(main())
