"""Resource-server benchmark: tokenward's middleware against no auth and a Redis session.

Run from the repository root (``redis-server`` on the PATH, or ``--redis-url``)::

    .venv/bin/python benchmarks/verify.py                  # full run (about 5 minutes)
    .venv/bin/python benchmarks/verify.py --quick          # smoke test (about 20 s)
    .venv/bin/python benchmarks/verify.py --json verify.json --seconds 5

One server stack: a uvicorn process on 127.0.0.1, pinned to one core with
``os.sched_setaffinity``, serving four Starlette apps that share one endpoint (a small
JSON answer naming the caller). A path lookup picks the app; each app is built the
documented way, ``Starlette(routes=[Route(path, item)], middleware=[...])``:

* ``/none``: no authentication (the floor);
* ``/hs256``, ``/es256``: ``TokenwardMiddleware`` with a ``Verifier`` over
  ``StaticKeys.from_file`` (an HS256 secret; an ES256 public key), ``scopes=["read"]``,
  and a deny list preloaded with ``--revoked`` revoked sessions. No store, no I/O;
* ``/redis``: the server-session design tokenward replaces, a pure ASGI middleware that
  reads ``Authorization: Bearer <session id>`` and does one ``GET`` on Redis through
  ``redis.asyncio`` with a connection pool (401 when the key is missing).

Seven scenarios, every one in every round: ``none``; ``hs256``, ``es256`` and ``redis``
each ``-reused`` (each connection is one client and sends its own token every time: the
verified-token cache answers) and ``-fresh`` (every request carries a token or session id
never sent before: tokens are pre-minted and session keys pre-created between windows,
never during one). ``none`` is sent the same requests as ``hs256-reused``, and ignores
the header.

Measured per window (``--seconds``), with ``--connections`` keep-alive connections each
keeping one request in flight:

* throughput (requests/s) and latency (p50/p99 over every request of the scenario);
* server CPU per request: the server's CPU time before and after the window, divided by
  the requests answered. The primary measure on a shared machine: throughput also counts
  the time other jobs hold the server's core. Read from ``/proc/<pid>/task/*/schedstat``
  (the scheduler's nanosecond accounting, which also gives the time the server waited
  for its core); ``utime + stime`` from ``/proc/<pid>/stat`` (10 ms ticks) is recorded
  alongside and used when schedstat is missing;
* store operations per request: the delta of Redis ``INFO commandstats`` (every command
  but our own ``INFO``) over the window, and the Redis server's own CPU (``INFO cpu``);
* signature verifications per request, from the verifiers' ``stats`` (read through a
  ``/_stats`` route between windows).

Method: a warm-up pass, then ``--rounds`` interleaved rounds; each round runs every
scenario once, starting one scenario further along each round, so slow phases of the
machine hit all of them alike. Figures are medians over rounds; ``paired`` ratios are
medians of the per-round ratios. Targets (issue 5), judged on capacity (1 / server CPU
per request; ``--basis throughput`` judges on measured requests/s instead, and both are
printed): with reused tokens tokenward gives at least 90% of ``none``; with a fresh HS256
token per request at least 70%; in both cases at least twice the Redis session.

Load generator: a raw asyncio HTTP/1.1 keep-alive client in this process, pinned to
another core (requests are prebuilt bytes, or one concatenation for a fresh token;
responses are framed by ``Content-Length``; anything but a 200 stops the run). Is it the
bottleneck? Each window records the generator's CPU and wait (shares of its own core)
and the server's ``idle`` share (neither running nor waiting for its core): idle near 0
means the server limits. Where ``wrk`` is installed, full runs also drive ``none`` and
``hs256-reused`` with ``wrk`` (pinned to the generator's core), interleaved with our
client: if our client were the limit, ``wrk`` would get more requests per second.

Redis: by default a private ``redis-server`` on a free loopback port (no persistence,
pinned to the generator's core: a session store is another machine's CPU in production,
not the API server's), so ``commandstats`` counts only this benchmark. ``--redis-url``
uses an existing server instead (its counters then include other clients' traffic).
Keys carry a random prefix, expire after an hour, and are deleted at the end.

Also measured (in child processes): the memory of a ``DenyList`` holding ``--deny-sessions``
revoked sessions (one million by default), by ``tracemalloc`` and by RSS delta.

Ctrl-C stops the run and still stops the server and Redis and removes temporary files.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import gc
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
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

# Run as a script, this file's folder is on sys.path but the repository root is not.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._http import BenchmarkError, HttpConnection, free_port
from benchmarks._process import Child, spawn

ISSUER = "https://auth.bench.example"
AUDIENCE = "api"
SCOPE = "read write"
ALGS = ("hs256", "es256")
# (name, path, fresh): the order of the first round.
SCENARIOS: tuple[tuple[str, str, bool], ...] = (
    ("none", "/none", False),
    ("hs256-reused", "/hs256", False),
    ("hs256-fresh", "/hs256", True),
    ("es256-reused", "/es256", False),
    ("es256-fresh", "/es256", True),
    ("redis-reused", "/redis", False),
    ("redis-fresh", "/redis", True),
)
SESSION_PREFIX = "twbench:verify:"
SESSION_TTL = 3600
_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


# == the server process ===========================================================================


def serve(config_path: str) -> None:
    """Child process: pin itself, build the four apps, serve them with uvicorn."""
    config = json.loads(Path(config_path).read_text())
    if config["cpu"] is not None:
        os.sched_setaffinity(0, {config["cpu"]})  # before any thread exists
    import uvicorn

    app = build_app(config)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=config["port"],
            http=config["http"],
            loop=config["loop"],
            lifespan="on",
            log_level="warning",
            access_log=False,
            proxy_headers=False,
            server_header=False,
        )
    )

    def stop(signum: int, frame: FrameType | None) -> None:
        server.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)
    server.run()


def load_deny_list(path: str) -> Any:
    """A DenyList holding the revoked session ids listed in ``path`` (one a line)."""
    from tokenward.service import DenyList
    from tokenward.stores.base import RevocationEvent, RevocationKind

    deny = DenyList()
    now = time.time()
    sids = Path(path).read_text().split()
    for seq, sid in enumerate(sids, 1):
        deny.apply(RevocationEvent(seq, RevocationKind.SESSION, now, now + SESSION_TTL, sid=sid))
    return deny


def build_app(config: dict[str, Any]) -> Any:
    """The server: one path lookup in front of four Starlette apps sharing one endpoint."""
    import redis.asyncio as aioredis
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from tokenward.integrations import TokenwardMiddleware
    from tokenward.service import StaticKeys, Verifier

    async def item(request: Request) -> JSONResponse:
        """The endpoint every scenario reaches: who is calling, and one item."""
        claims = request.scope.get("tokenward")
        user = claims.sub if claims is not None else request.scope.get("session_user", "-")
        return JSONResponse({"user": user, "item": 42})

    deny = load_deny_list(config["revoked"])
    verifiers = {
        alg: Verifier(
            StaticKeys.from_file(config["jwks"][alg]),
            issuer=ISSUER,
            audience=AUDIENCE,
            deny=deny,
        )
        for alg in ALGS
    }
    client = aioredis.Redis(
        connection_pool=aioredis.ConnectionPool.from_url(config["redis_url"], max_connections=64)
    )
    counters = SessionCounters()
    apps: dict[str, Any] = {"/none": Starlette(routes=[Route("/none", item)])}
    for alg, verifier in verifiers.items():
        apps[f"/{alg}"] = Starlette(
            routes=[Route(f"/{alg}", item)],
            middleware=[Middleware(TokenwardMiddleware, verifier=verifier, scopes=["read"])],
        )
    apps["/redis"] = Starlette(
        routes=[Route("/redis", item)],
        middleware=[
            Middleware(
                RedisSessionMiddleware,
                redis=client,
                prefix=config["prefix"].encode(),
                counters=counters,
            )
        ],
    )

    def stats() -> dict[str, Any]:
        out: dict[str, Any] = {"pid": os.getpid(), "deny_entries": len(deny)}
        for alg, verifier in verifiers.items():
            s = verifier.stats
            out[alg] = {
                "signature_verifications": s.signature_verifications,
                "cache_hits": s.cache_hits,
                "cache_evictions": s.cache_evictions,
                "cached_tokens": verifier.cached_tokens,
            }
        out["redis"] = {"lookups": counters.lookups, "misses": counters.misses}
        return out

    async def shutdown() -> None:
        await client.aclose()

    return Dispatch(apps, stats, shutdown)


@dataclass
class SessionCounters:
    """What the session middleware did (read through ``/_stats``)."""

    lookups: int = 0
    misses: int = 0


class RedisSessionMiddleware:
    """The server-session design: ``Authorization: Bearer <sid>``, one Redis ``GET``."""

    def __init__(
        self,
        app: Callable[..., Awaitable[None]],
        *,
        redis: Any,
        prefix: bytes,
        counters: SessionCounters,
    ) -> None:
        self.app = app
        self._get = redis.get
        self._prefix = prefix
        self._counters = counters

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """401 without a live session; otherwise the session's user goes on the scope."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        value = None
        for name, field_value in scope["headers"]:
            if name == b"authorization":
                value = field_value
                break
        user = None
        if value is not None and value.startswith(b"Bearer ") and len(value) > 7:
            self._counters.lookups += 1
            user = await self._get(self._prefix + value[7:])
        if user is None:
            self._counters.misses += 1
            await _respond(send, 401, b'{"error":"unauthorized"}')
            return
        scope["session_user"] = user.decode()
        await self.app(scope, receive, send)


async def _respond(send: Any, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class Dispatch:
    """Pick the app by exact path (one dict lookup, the same for every scenario)."""

    def __init__(
        self,
        apps: dict[str, Any],
        stats: Callable[[], dict[str, Any]],
        shutdown: Callable[[], Awaitable[None]],
    ) -> None:
        self.apps = apps
        self.stats = stats
        self.shutdown = shutdown

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Route ``http``; answer ``/_stats``; run the lifespan (closes the Redis pool)."""
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await self.shutdown()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        app = self.apps.get(scope["path"])
        if app is not None:
            await app(scope, receive, send)
        elif scope["path"] == "/_stats":
            await _respond(send, 200, json.dumps(self.stats()).encode())
        else:
            await _respond(send, 404, b'{"error":"not found"}')


# == processes and counters =======================================================================


def process_cpu(pid: int) -> float:
    """utime + stime of process ``pid`` (all its threads, dead ones too), seconds.

    Tick-based (``SC_CLK_TCK``, 10 ms here): coarse for a short window; see ``sched_cpu``.
    """
    with open(f"/proc/{pid}/stat", "rb") as stat:
        fields = stat.read().rpartition(b")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def server_times(pid: int) -> tuple[float, float, float]:
    """(CPU by schedstat, run-queue wait by schedstat, CPU by /proc/<pid>/stat), seconds."""
    run, wait = sched_cpu(pid)
    return run, wait, process_cpu(pid)


def sched_cpu(pid: int) -> tuple[float, float]:
    """(time on a CPU, time runnable but waiting for one), seconds, summed over live threads.

    From ``/proc/<pid>/task/*/schedstat`` (the scheduler's nanosecond accounting); nan
    when the kernel does not provide it.
    """
    run = wait = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return math.nan, math.nan
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat", "rb") as stat:
                fields = stat.read().split()
        except OSError:  # a thread that just ended, or no schedstat at all
            continue
        run += int(fields[0])
        wait += int(fields[1])
    if not run:
        return math.nan, math.nan
    return run / 1e9, wait / 1e9


def core_times() -> dict[int, tuple[float, float]]:
    """(busy, total) jiffies per core from /proc/stat."""
    out: dict[int, tuple[float, float]] = {}
    try:
        text = Path("/proc/stat").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        match = re.match(r"cpu(\d+) ", line)
        if match:
            values = [float(v) for v in line.split()[1:9]]
            idle = values[3] + values[4]  # idle + iowait
            out[int(match.group(1))] = (sum(values) - idle, sum(values))
    return out


def core_busy(
    before: dict[int, tuple[float, float]], after: dict[int, tuple[float, float]], cpu: int | None
) -> float:
    """Share of core ``cpu`` busy with anything between two snapshots (nan if unknown)."""
    if cpu is None or cpu not in before or cpu not in after:
        return math.nan
    busy = after[cpu][0] - before[cpu][0]
    total = after[cpu][1] - before[cpu][1]
    return busy / total if total > 0 else math.nan


class Redis:
    """The session store: a private redis-server, or one given by URL; and its counters."""

    def __init__(self, url: str, child: Child | None, prefix: str) -> None:
        import redis

        self.url = url
        self.child = child
        self.prefix = prefix
        self.client = redis.Redis.from_url(url)
        self.created = 0

    @classmethod
    def start(cls, url: str | None, tmp: Path, cpu: int | None) -> Redis | None:
        """Connect to ``url``, or start a private server; ``None`` if neither works."""
        import redis

        prefix = f"{SESSION_PREFIX}{secrets.token_hex(4)}:"
        if url is None:
            binary = shutil.which("redis-server")
            if binary is None:
                url = "redis://127.0.0.1:6379/0"
            else:
                port = free_port()
                argv = [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", ""]
                argv += ["--appendonly", "no", "--dir", str(tmp)]
                child = spawn("redis", argv, tmp, cpu)
                store = cls(f"redis://127.0.0.1:{port}/0", child, prefix)
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    try:
                        store.client.ping()
                    except redis.ConnectionError:
                        if child.process.poll() is not None:
                            raise BenchmarkError(
                                "redis-server exited:\n" + child.log_tail()
                            ) from None
                        time.sleep(0.05)
                    else:
                        return store
                child.stop()
                raise BenchmarkError("redis-server did not answer within 10 s")
        store = cls(url, None, prefix)
        try:
            store.client.ping()
        except redis.ConnectionError:
            return None
        return store

    @property
    def private(self) -> bool:
        """Whether we started this server (then its counters are ours alone)."""
        return self.child is not None

    def version(self) -> str:
        """The server's version."""
        return str(self.client.info("server").get("redis_version", "?"))

    def counters(self) -> tuple[dict[str, int], float]:
        """(calls per command, INFO excluded; the server's CPU seconds) now."""
        stats = self.client.info("commandstats")
        calls = {
            name.removeprefix("cmdstat_"): int(value["calls"])
            for name, value in stats.items()
            if name != "cmdstat_info"
        }
        cpu = self.client.info("cpu")
        return calls, float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])

    def create_sessions(self, sids: Sequence[bytes], users: Sequence[str]) -> None:
        """SET prefix+sid -> user, with a TTL, in pipelined batches."""
        prefix = self.prefix.encode()
        for start in range(0, len(sids), 2000):
            pipe = self.client.pipeline(transaction=False)
            for sid, user in zip(
                sids[start : start + 2000], users[start : start + 2000], strict=True
            ):
                pipe.set(prefix + sid, user, ex=SESSION_TTL)
            pipe.execute()
        self.created += len(sids)

    def cleanup(self) -> int:
        """Delete every key under our prefix; return how many."""
        removed = 0
        batch: list[bytes] = []
        for key in self.client.scan_iter(match=f"{self.prefix}*", count=2000):
            batch.append(key)
            if len(batch) >= 2000:
                removed += int(self.client.unlink(*batch))
                batch = []
        if batch:
            removed += int(self.client.unlink(*batch))
        return removed

    def close(self) -> str:
        """Close our client; stop the private server if we started it."""
        self.client.close()
        return self.child.stop() if self.child is not None else "external (left running)"


# == tokens and sessions ==========================================================================


@dataclass
class Keys:
    """The signing keys (this process) and the JWKS files the server verifies with."""

    signing: dict[str, Any]
    jwks: dict[str, str]

    @classmethod
    def create(cls, tmp: Path) -> Keys:
        """An HS256 secret and an ES256 key pair; write each verifier's JWKS file."""
        from tokenward.jose import Key

        hs = Key.from_secret(secrets.token_bytes(32), alg="HS256", kid="bench-hs")
        es = Key.generate("ES256", kid="bench-es")
        jwks: dict[str, str] = {}
        for alg, published in (
            ("hs256", hs.to_jwk(private=True)),
            ("es256", es.public_key().to_jwk()),
        ):
            path = tmp / f"{alg}.jwks.json"
            path.write_text(json.dumps({"keys": [published]}))
            path.chmod(0o600)
            jwks[alg] = str(path)
        return cls({"hs256": hs, "es256": es}, jwks)


class Minter:
    """Access tokens shaped like TokenService's, for the bench's issuer and audience."""

    def __init__(self, keys: Keys) -> None:
        from tokenward.jose import jwt

        self._encode = jwt.encode
        self._keys = keys.signing
        self.now = int(time.time())
        self.serial = 0

    def token(self, alg: str, sub: str, sid: str | None = None) -> bytes:
        """One signed access token (valid for an hour) as ASCII bytes."""
        self.serial += 1
        now = self.now
        claims = {
            "iss": ISSUER,
            "sub": sub,
            "aud": AUDIENCE,
            "exp": now + 3600,
            "nbf": now,
            "iat": now,
            "jti": secrets.token_urlsafe(32),
            "sid": sid or secrets.token_urlsafe(16),
            "scope": SCOPE,
            "token_type": "access",
            "session_exp": now + 86400,
            "client_id": "default",
        }
        token: str = self._encode(claims, self._keys[alg], typ="at+jwt")
        return token.encode()


class Pool:
    """Credentials each sent once: filled between windows, drawn from during one."""

    def __init__(self, fill: Callable[[int], list[bytes]]) -> None:
        self._fill = fill
        self._items: list[bytes] = []
        self._next = 0
        self.made = 0

    @property
    def remaining(self) -> int:
        """Credentials not sent yet."""
        return len(self._items) - self._next

    def top_up(self, need: int) -> float:
        """Have at least ``need`` unsent credentials; return the seconds it took."""
        missing = need - self.remaining
        if missing <= 0:
            return 0.0
        start = time.perf_counter()
        self._items = self._items[self._next :] + self._fill(missing)
        self._next = 0
        self.made += missing
        return time.perf_counter() - start

    def take(self) -> bytes | None:
        """The next unsent credential (``None`` when the pool is empty)."""
        i = self._next
        if i >= len(self._items):
            return None
        self._next = i + 1
        return self._items[i]


# == the load generator ===========================================================================


def request_head(path: str, port: int) -> bytes:
    """``GET path`` up to the bearer credential."""
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer ".encode()


async def fetch(port: int, path: str, credential: bytes | None = None) -> tuple[int, bytes]:
    """One request on a new connection."""
    conn = await HttpConnection.open(port)
    try:
        auth = b"" if credential is None else b"Authorization: Bearer " + credential + b"\r\n"
        data = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode() + auth + b"\r\n"
        return await asyncio.wait_for(conn.request(data), timeout=10)
    finally:
        conn.close()


@dataclass
class Window:
    """One scenario driven for one window, and what it cost."""

    scenario: str
    round: int
    requests: int
    elapsed: float
    server_cpu: float  # schedstat; /proc/<pid>/stat when the kernel has no schedstat
    server_cpu_ticks: float  # /proc/<pid>/stat utime + stime
    server_wait: float  # runnable but waiting for its core (schedstat)
    generator_cpu: float
    generator_wait: float
    server_core_busy: float
    generator_core_busy: float
    latencies: list[float] = field(repr=False)
    store_ops: int = 0
    store_gets: int = 0
    store_cpu: float = 0.0
    signature_verifications: int = 0
    session_lookups: int = 0
    exhausted: bool = False

    @property
    def rps(self) -> float:
        """Requests per second."""
        return self.requests / self.elapsed

    @property
    def cpu_us(self) -> float:
        """Server CPU per request, microseconds."""
        return self.server_cpu / self.requests * 1e6

    @property
    def server_idle(self) -> float:
        """Share of the window the server was neither running nor waiting for its core."""
        return max(0.0, 1 - (self.server_cpu + self.server_wait) / self.elapsed)

    def record(self) -> dict[str, Any]:
        """The JSON record (latencies summarised)."""
        lat = sorted(self.latencies)
        return {
            "scenario": self.scenario,
            "round": self.round,
            "requests": self.requests,
            "elapsed_s": self.elapsed,
            "rps": self.rps,
            "server_cpu_us_per_request": self.cpu_us,
            "server_cpu_us_per_request_ticks": self.server_cpu_ticks / self.requests * 1e6,
            "server_cpu_share": self.server_cpu / self.elapsed,
            "server_wait_share": self.server_wait / self.elapsed,
            "generator_cpu_share": self.generator_cpu / self.elapsed,
            "generator_wait_share": self.generator_wait / self.elapsed,
            "server_idle_share": self.server_idle,
            "server_core_busy": self.server_core_busy,
            "generator_core_busy": self.generator_core_busy,
            "p50_ms": quantile(lat, 0.5) * 1e3,
            "p99_ms": quantile(lat, 0.99) * 1e3,
            "store_ops": self.store_ops,
            "store_gets": self.store_gets,
            "store_cpu_s": self.store_cpu,
            "signature_verifications": self.signature_verifications,
            "session_lookups": self.session_lookups,
            "exhausted_pool": self.exhausted,
        }


def quantile(ordered: Sequence[float], q: float) -> float:
    """The ``q`` quantile of sorted values (nearest rank); nan when empty."""
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


# == the benchmark ================================================================================


@dataclass
class Setup:
    """Everything a run needs once the processes are up."""

    port: int
    server: Child
    redis: Redis | None
    minter: Minter
    connections: int
    server_cpu: int | None
    generator_cpu: int | None
    reused: dict[str, list[bytes]]  # per credential kind, one per connection
    pools: dict[str, Pool]
    heads: dict[str, bytes]
    rate_hint: float = 0.0
    pool_seconds: float = 0.0

    def scenarios(self) -> list[tuple[str, str, bool]]:
        """The scenarios this run can measure (the Redis ones need Redis)."""
        return [s for s in SCENARIOS if self.redis is not None or not s[0].startswith("redis")]


def credential_kind(name: str) -> str:
    """``hs256``, ``es256`` or ``redis``; ``none`` sends the HS256 reused tokens."""
    kind = name.split("-", maxsplit=1)[0]
    return "hs256" if kind == "none" else kind


async def server_stats(port: int) -> dict[str, Any]:
    """The server's counters (verifiers and the session middleware)."""
    status, body = await fetch(port, "/_stats")
    if status != 200:
        raise BenchmarkError(f"/_stats: HTTP {status}")
    stats: dict[str, Any] = json.loads(body)
    return stats


def _nothing() -> bytes | None:
    return None


@dataclass
class Snapshot:
    """The work counters around a window: the server's and the store's."""

    signature_verifications: int
    session_lookups: int
    store_calls: dict[str, int]
    store_cpu: float

    @classmethod
    async def take(cls, setup: Setup, kind: str) -> Snapshot:
        """Read them now (outside any timed window)."""
        stats = await server_stats(setup.port)
        sigs = int(stats[kind]["signature_verifications"]) if kind in ALGS else 0
        calls, cpu = setup.redis.counters() if setup.redis is not None else ({}, 0.0)
        return cls(sigs, int(stats["redis"]["lookups"]), calls, cpu)


@dataclass
class Load:
    """What one timed window measured on the generator's side."""

    requests: int
    elapsed: float
    server: tuple[float, float, float]  # deltas of server_times()
    generator_cpu: float
    generator_wait: float
    server_core_busy: float
    generator_core_busy: float
    latencies: list[float]
    exhausted: bool


async def apply_load(
    setup: Setup,
    name: str,
    requests: list[bytes],
    next_request: Callable[[], bytes | None] | None,
    seconds: float,
) -> Load:
    """Keep every connection busy for ``seconds``: the same bytes, or ``next_request()``."""
    conns = [await HttpConnection.open(setup.port) for _ in range(setup.connections)]
    await asyncio.sleep(0.05)  # let the server finish accepting before the snapshot
    latencies: list[float] = []
    exhausted = False
    perf = time.perf_counter

    async def worker(i: int, conn: HttpConnection, deadline: float) -> int:
        nonlocal exhausted
        done = 0
        record = latencies.append
        data: bytes | None = requests[i]
        while perf() < deadline:
            if next_request is not None:
                data = next_request()
                if data is None:
                    exhausted = True
                    break
            assert data is not None
            start = perf()
            status, body = await conn.request(data)
            record(perf() - start)
            if status != 200:
                raise BenchmarkError(f"{name}: HTTP {status}: {body[:300]!r}")
            done += 1
        return done

    gc.collect()
    gc.disable()
    try:
        cores0 = core_times()
        server0 = server_times(setup.server.pid)
        gen_wait0 = sched_cpu(os.getpid())[1]
        gen0 = time.process_time()
        start = perf()
        deadline = start + seconds
        counts = await asyncio.gather(*(worker(i, c, deadline) for i, c in enumerate(conns)))
        elapsed = perf() - start
        gen1 = time.process_time()
        gen_wait1 = sched_cpu(os.getpid())[1]
        server1 = server_times(setup.server.pid)
        cores1 = core_times()
    finally:
        gc.enable()
        for conn in conns:
            conn.close()
    await asyncio.sleep(0.05)  # connection teardown stays out of the next window
    run, wait, ticks = (after - before for after, before in zip(server1, server0, strict=True))
    return Load(
        sum(counts),
        elapsed,
        (run, wait, ticks),
        gen1 - gen0,
        gen_wait1 - gen_wait0,
        core_busy(cores0, cores1, setup.server_cpu),
        core_busy(cores0, cores1, setup.generator_cpu),
        latencies,
        exhausted,
    )


async def drive(
    setup: Setup, scenario: tuple[str, str, bool], seconds: float, round_no: int
) -> Window:
    """Run one window of one scenario; measure what it cost."""
    name, path, fresh = scenario
    kind = credential_kind(name)
    head = setup.heads[path]
    requests = [head + token + b"\r\n\r\n" for token in setup.reused[kind]]
    next_request: Callable[[], bytes | None] | None = None
    if fresh:
        pool = setup.pools[kind]
        need = int(max(setup.rate_hint, 1000.0) * seconds * 1.5) + 4 * setup.connections
        setup.pool_seconds += pool.top_up(need)
        take = pool.take

        def next_request() -> bytes | None:
            token = take()
            return None if token is None else head + token + b"\r\n\r\n"

    before = await Snapshot.take(setup, kind)
    load = await apply_load(setup, name, requests, next_request, seconds)
    after = await Snapshot.take(setup, kind)
    if load.requests == 0:
        raise BenchmarkError(f"{name}: no request completed in {seconds:g} s")
    run, wait, ticks = load.server
    window = Window(
        name,
        round_no,
        load.requests,
        load.elapsed,
        ticks if math.isnan(run) else run,
        ticks,
        wait,
        load.generator_cpu,
        load.generator_wait,
        load.server_core_busy,
        load.generator_core_busy,
        load.latencies,
        store_ops=sum(after.store_calls.values()) - sum(before.store_calls.values()),
        store_gets=after.store_calls.get("get", 0) - before.store_calls.get("get", 0),
        store_cpu=after.store_cpu - before.store_cpu,
        signature_verifications=(
            after.signature_verifications - before.signature_verifications if name != "none" else 0
        ),
        session_lookups=after.session_lookups - before.session_lookups,
        exhausted=load.exhausted,
    )
    setup.rate_hint = max(setup.rate_hint, window.rps)
    return window


async def sanity_checks(setup: Setup, revoked_sid: str) -> list[str]:
    """Every protected endpoint must refuse what it must refuse; return the problems."""
    port, minter = setup.port, setup.minter
    problems: list[str] = []

    async def expect(label: str, path: str, credential: bytes | None, status: int) -> None:
        got, body = await fetch(port, path, credential)
        if got != status:
            problems.append(f"{label}: HTTP {got} (expected {status}): {body[:120]!r}")

    hs = minter.token("hs256", "sanity-user")
    es = minter.token("es256", "sanity-user")
    await expect("none, no credentials", "/none", None, 200)
    for alg, good, other in (("hs256", hs, es), ("es256", es, hs)):
        path = f"/{alg}"
        await expect(f"{alg}, valid token", path, good, 200)
        await expect(f"{alg}, no credentials", path, None, 401)
        tampered = good[:-4] + (b"AAAA" if good[-4:] != b"AAAA" else b"BBBB")
        await expect(f"{alg}, tampered signature", path, tampered, 401)
        await expect(f"{alg}, token of the other key", path, other, 401)
        revoked = minter.token(alg, "sanity-user", sid=revoked_sid)
        await expect(f"{alg}, revoked session", path, revoked, 401)
        status, body = await fetch(port, path, good)
        if status != 200 or b'"sanity-user"' not in body:
            problems.append(f"{alg}: the endpoint did not see the token's subject: {body!r}")
    if setup.redis is not None:
        sid = secrets.token_urlsafe(16).encode()
        setup.redis.create_sessions([sid], ["session-user"])
        status, body = await fetch(port, "/redis", sid)
        if status != 200 or b'"session-user"' not in body:
            problems.append(f"redis, live session: HTTP {status}: {body[:120]!r}")
        await expect("redis, unknown session", "/redis", secrets.token_urlsafe(16).encode(), 401)
        await expect("redis, no credentials", "/redis", None, 401)
        await expect("redis, a JWT is no session id", "/redis", hs, 401)
    return problems


# -- wrk cross-check ------------------------------------------------------------------------------


def run_wrk(setup: Setup, path: str, token: bytes, seconds: float) -> dict[str, Any]:
    """Drive ``path`` with wrk (one thread, same connections); measure the server's CPU."""
    wrk = shutil.which("wrk")
    assert wrk is not None
    argv = [
        wrk,
        "-t1",
        f"-c{setup.connections}",
        f"-d{max(1, round(seconds))}s",
        "--latency",
        "-H",
        f"Authorization: Bearer {token.decode()}",
        f"http://127.0.0.1:{setup.port}{path}",
    ]
    cores0 = core_times()
    server0 = server_times(setup.server.pid)
    children0 = os.times()
    result = subprocess.run(  # noqa: S603 - fixed argv: wrk against our own server
        argv, capture_output=True, text=True, timeout=seconds + 30, check=False
    )
    children1 = os.times()
    server1 = server_times(setup.server.pid)
    cores1 = core_times()
    out = result.stdout
    total = re.search(r"(\d+) requests in ([\d.]+)(ms|s|m)", out)
    if result.returncode != 0 or total is None:
        raise BenchmarkError(f"wrk failed (status {result.returncode}):\n{out}{result.stderr}")
    if "Non-2xx" in out or "Socket errors" in out:
        raise BenchmarkError(f"wrk saw errors:\n{out}")
    requests = int(total.group(1))
    elapsed = float(total.group(2)) * {"ms": 1e-3, "s": 1.0, "m": 60.0}[total.group(3)]
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)", out, re.MULTILINE)
    p99_ms = float(p99.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[p99.group(2)] if p99 else None
    wrk_cpu = (children1.children_user - children0.children_user) + (
        children1.children_system - children0.children_system
    )
    run, wait = server1[0] - server0[0], server1[1] - server0[1]
    return {
        "path": path,
        "requests": requests,
        "server_idle_share": max(0.0, 1 - (run + wait) / elapsed) if not math.isnan(run) else 0.0,
        "elapsed_s": elapsed,
        "rps": requests / elapsed,
        "p99_ms": p99_ms,
        "server_cpu_us_per_request": (
            (server1[0] - server0[0]) if not math.isnan(server1[0]) else (server1[2] - server0[2])
        )
        / requests
        * 1e6,
        "server_core_busy": core_busy(cores0, cores1, setup.server_cpu),
        "wrk_cpu_share": wrk_cpu / elapsed,
    }


# == statistics, targets, printing ================================================================


@dataclass
class Summary:
    """One scenario over every round."""

    name: str
    windows: list[Window]

    @property
    def requests(self) -> int:
        """Requests over every round."""
        return sum(w.requests for w in self.windows)

    @property
    def rps(self) -> float:
        """Median requests per second over rounds."""
        return statistics.median(w.rps for w in self.windows)

    @property
    def cpu_us(self) -> float:
        """Median server CPU per request over rounds, microseconds."""
        return statistics.median(w.cpu_us for w in self.windows)

    def cpu_spread(self) -> str:
        """p25..p75 of the per-round server CPU per request, microseconds."""
        values = sorted(w.cpu_us for w in self.windows)
        return f"{quantile(values, 0.25):.0f}..{quantile(values, 0.75):.0f}"

    def latency_ms(self, q: float) -> float:
        """Latency quantile over every request of every round, ms."""
        pooled = sorted(x for w in self.windows for x in w.latencies)
        return quantile(pooled, q) * 1e3

    def per_request(self, attr: str) -> float:
        """A counter summed over rounds, per request."""
        return float(sum(getattr(w, attr) for w in self.windows)) / self.requests

    def median(self, fn: Callable[[Window], float]) -> float:
        """Median of a per-window figure."""
        values = [v for v in (fn(w) for w in self.windows) if not math.isnan(v)]
        return statistics.median(values) if values else math.nan

    def paired(self, other: Summary, fn: Callable[[Window], float]) -> float:
        """Median over rounds of fn(self) / fn(other) in the same round."""
        theirs = {w.round: fn(w) for w in other.windows}
        ratios = [fn(w) / theirs[w.round] for w in self.windows if w.round in theirs]
        return statistics.median(ratios) if ratios else math.nan


def throughput(w: Window) -> float:
    """Requests per second of a window."""
    return w.rps


def capacity(w: Window) -> float:
    """Requests per CPU-second of the server in a window (1 / CPU per request)."""
    return 1e6 / w.cpu_us


@dataclass
class Target:
    """One PASS/FAIL (or info) line: a ratio of two scenarios on both bases."""

    label: str
    mine: Summary
    theirs: Summary
    limit: float | None
    basis: str

    def value(self, basis: str) -> float:
        """Ratio of medians on ``basis`` (capacity or throughput)."""
        if basis == "capacity":
            return self.theirs.cpu_us / self.mine.cpu_us
        return self.mine.rps / self.theirs.rps

    def paired(self, basis: str) -> float:
        """Median of per-round ratios on ``basis``."""
        return self.mine.paired(self.theirs, capacity if basis == "capacity" else throughput)

    @property
    def passed(self) -> bool | None:
        """Verdict on the selected basis (``None`` for an information line)."""
        return None if self.limit is None else self.value(self.basis) >= self.limit

    def line(self) -> str:
        """The printed line."""
        other = "throughput" if self.basis == "capacity" else "capacity"
        verdict = {True: "PASS", False: "FAIL", None: "info"}[self.passed]
        goal = f"target >= {self.limit:g}x; " if self.limit is not None else ""
        return (
            f"{verdict}  {self.label} [{self.basis}]: {self.value(self.basis):.3f}x"
            f" ({goal}paired {self.paired(self.basis):.2f}x;"
            f" {other} {self.value(other):.2f}x, paired {self.paired(other):.2f}x)"
        )

    def record(self) -> dict[str, Any]:
        """The JSON record."""
        return {
            "label": self.label,
            "limit": self.limit,
            "basis": self.basis,
            "passed": self.passed,
            "capacity": self.value("capacity"),
            "capacity_paired": self.paired("capacity"),
            "throughput": self.value("throughput"),
            "throughput_paired": self.paired("throughput"),
        }


def make_targets(summaries: dict[str, Summary], basis: str) -> list[Target]:
    """Issue 5's targets (and the ES256 fresh figures, for information)."""
    s = summaries
    out: list[Target] = []

    def add(label: str, mine: str, theirs: str, limit: float | None) -> None:
        if mine in s and theirs in s:
            out.append(Target(label, s[mine], s[theirs], limit, basis))

    add("reused HS256 token: tokenward / no auth", "hs256-reused", "none", 0.9)
    add("reused ES256 token: tokenward / no auth", "es256-reused", "none", 0.9)
    add("fresh HS256 token: tokenward / no auth", "hs256-fresh", "none", 0.7)
    add("fresh ES256 token: tokenward / no auth", "es256-fresh", "none", None)
    add("reused HS256 token: tokenward / Redis session", "hs256-reused", "redis-reused", 2.0)
    add("reused ES256 token: tokenward / Redis session", "es256-reused", "redis-reused", 2.0)
    add("fresh HS256 token: tokenward / Redis session", "hs256-fresh", "redis-fresh", 2.0)
    add("fresh ES256 token: tokenward / Redis session", "es256-fresh", "redis-fresh", None)
    return out


def print_table(summaries: dict[str, Summary], rounds: int) -> None:
    """The per-scenario table."""
    print(
        f"\nResults ({rounds} interleaved rounds; req/s and CPU: medians over rounds;"
        " latency over every request)"
    )
    print(
        f"  {'scenario':<13} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'CPU us/req':>10}"
        f" {'p25..p75':>11} {'req/CPU-s':>9}"
        f" {'store ops/req':>13} {'redis us/req':>12} {'sig/req':>8} {'server':>6}"
        f" {'wait':>5} {'idle':>5} {'gen':>5} {'gwait':>5}"
    )
    for name, s in summaries.items():
        print(
            f"  {name:<13} {s.rps:>7.0f} {s.latency_ms(0.5):>7.2f} {s.latency_ms(0.99):>7.2f}"
            f" {s.cpu_us:>10.1f} {s.cpu_spread():>11} {1e6 / s.cpu_us:>9.0f}"
            f" {s.per_request('store_ops'):>13.3f}"
            f" {s.per_request('store_cpu') * 1e6:>12.1f}"
            f" {s.per_request('signature_verifications'):>8.4f}"
            f" {s.median(lambda w: w.server_cpu / w.elapsed):>6.0%}"
            f" {s.median(lambda w: w.server_wait / w.elapsed):>5.0%}"
            f" {s.median(lambda w: w.server_idle):>5.0%}"
            f" {s.median(lambda w: w.generator_cpu / w.elapsed):>5.0%}"
            f" {s.median(lambda w: w.generator_wait / w.elapsed):>5.0%}"
        )
    print(
        "  CPU us/req: server CPU (the scheduler's ns accounting) per request, and its spread"
        " over rounds;\n  req/CPU-s: capacity, 1 / CPU per request (what one fully-owned core"
        " would serve); redis us/req: the Redis server's CPU (INFO cpu)\n"
        "  server, wait, idle: shares of wall time the server ran, was runnable while other"
        " processes held its core, and had nothing to do;\n"
        "  gen, gwait: the same for the generator (this process, on the other core)."
        " idle near 0 = the server limits"
    )


# == the deny set's memory ========================================================================


def deny_memory_child(sessions: int, method: str) -> dict[str, Any]:
    """In a fresh process: build a DenyList of ``sessions`` revoked sessions; measure it."""
    from tokenward.service import DenyList
    from tokenward.stores.base import RevocationEvent, RevocationKind

    page = os.sysconf("SC_PAGE_SIZE")

    def rss() -> int:
        return int(Path("/proc/self/statm").read_text().split()[1]) * page

    gc.collect()
    if method == "tracemalloc":
        import tracemalloc

        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
    else:
        base = rss()
    deny = DenyList()
    now = time.time()
    kind = RevocationKind.SESSION
    token = secrets.token_urlsafe
    start = time.process_time()
    probe = ""
    for seq in range(1, sessions + 1):
        sid = token(16)  # the shape of TokenService's session ids
        # Feed events carry their own expiry; spread them over the access lifetime.
        deny.apply(RevocationEvent(seq, kind, now, now + 900 + seq % 900, sid=sid))
        if seq == sessions // 2:
            probe = sid
    build = time.process_time() - start
    gc.collect()
    if method == "tracemalloc":
        import tracemalloc

        used = tracemalloc.get_traced_memory()[0] - base
        tracemalloc.stop()
    else:
        used = rss() - base
    hit = {"sid": probe, "sub": "u", "iat": int(now)}
    miss = {"sid": token(16), "sub": "u", "iat": int(now)}
    timing: dict[str, float] = {}
    if method == "rss":  # time lookups only without tracemalloc's overhead
        for label, claims in (("hit", hit), ("miss", miss)):
            denies = deny.denies
            begin = time.process_time()
            for _ in range(200_000):
                denies(claims)
            timing[f"lookup_{label}_ns"] = (time.process_time() - begin) / 200_000 * 1e9
    if not deny.denies(hit) or deny.denies(miss):
        raise BenchmarkError("the deny list does not answer as expected")
    return {
        "method": method,
        "sessions": sessions,
        "entries": len(deny),
        "bytes": used,
        "bytes_per_session": used / sessions,
        "build_cpu_s": build,
        **timing,
    }


def measure_deny_memory(sessions: int) -> list[dict[str, Any]]:
    """Both measurements, each in its own fresh process."""
    out = []
    for method in ("tracemalloc", "rss"):
        result = subprocess.run(  # noqa: S603 - fixed argv: this interpreter, this script
            [sys.executable, str(Path(__file__).resolve()), "--deny-child", str(sessions), method],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if result.returncode != 0:
            raise BenchmarkError(f"deny-set measurement ({method}) failed:\n{result.stderr}")
        out.append(json.loads(result.stdout.strip().splitlines()[-1]))
    return out


# == main =========================================================================================


def versions() -> dict[str, str]:
    """Versions of everything that shapes the figures."""
    info = {"python": platform.python_version(), "platform": platform.platform()}
    for dist in (
        "tokenward",
        "starlette",
        "uvicorn",
        "h11",
        "httptools",
        "uvloop",
        "redis",
        "hiredis",
        "cryptography",
    ):
        try:
            info[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            info[dist] = "not installed"
    info["source"] = source_fingerprint()
    return info


def source_fingerprint() -> str:
    """A short hash of the code on the measured path (codec, verifier, deny list, ASGI)."""
    import hashlib

    import tokenward

    root = Path(tokenward.__file__).parent
    files = [
        *sorted(root.glob("jose/*.py")),
        root / "service" / "_verifier.py",
        root / "service" / "_deny.py",
        root / "service" / "_keysources.py",
        root / "integrations" / "asgi.py",
        root / "integrations" / "_bearer.py",
    ]
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return f"sha256:{digest.hexdigest()[:12]} (jose, verifier, deny list, asgi)"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="short windows, 2 rounds (smoke test)")
    parser.add_argument("--json", metavar="OUT", type=Path, help="write every figure to OUT")
    parser.add_argument("--seconds", type=float, help="seconds per window (default 2; quick 0.5)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 11; quick 2)")
    parser.add_argument("--connections", type=int, default=16, help="connections (default 16)")
    parser.add_argument(
        "--basis",
        choices=("capacity", "throughput"),
        default="capacity",
        help="what the targets are judged on: capacity = 1 / server CPU per request (default;"
        " robust on a shared machine) or measured throughput; both are printed",
    )
    parser.add_argument(
        "--redis-url", help="use this Redis instead of starting a private redis-server"
    )
    parser.add_argument("--revoked", type=int, default=10_000, help="revoked sessions preloaded")
    parser.add_argument(
        "--deny-sessions",
        type=int,
        help="deny-set memory: revoked sessions (default 1e6; quick 1e5)",
    )
    parser.add_argument("--http", default="auto", choices=("auto", "h11", "httptools"))
    parser.add_argument("--loop", default="auto", choices=("auto", "asyncio", "uvloop"))
    parser.add_argument(
        "--wrk",
        choices=("auto", "on", "off"),
        default="auto",
        help="wrk cross-check of the generator (auto: full runs, when wrk is installed)",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target FAILs")
    parser.add_argument("--serve", metavar="CONFIG", help=argparse.SUPPRESS)
    parser.add_argument("--deny-child", nargs=2, metavar=("N", "METHOD"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


@functools.cache
def choose_cores() -> tuple[int | None, int | None]:
    """(server core, generator core): the last and the first usable; None on one core.

    Decided once, before this process pins itself to the generator's core.
    """
    usable = sorted(os.sched_getaffinity(0))
    if len(usable) < 2:
        return None, None
    return usable[-1], usable[0]


def resolve(choice: str, module: str, fallback: str) -> str:
    """uvicorn's ``auto``, made explicit: ``module`` if importable, else ``fallback``."""
    if choice != "auto":
        return choice
    return module if importlib.util.find_spec(module) is not None else fallback


def load_avg() -> str:
    """The 1, 5 and 15 minute load averages."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


@contextlib.contextmanager
def processes(
    args: argparse.Namespace, tmp: Path, report: dict[str, Any]
) -> Iterator[tuple[Child, Redis | None, Keys, int, list[str]]]:
    """Start Redis and the server; always stop them and delete our Redis keys."""
    server_cpu, generator_cpu = choose_cores()
    redis_store: Redis | None = None
    server: Child | None = None
    try:
        redis_store = Redis.start(args.redis_url, tmp, generator_cpu)
        keys = Keys.create(tmp)
        revoked = [secrets.token_urlsafe(16) for _ in range(max(1, args.revoked))]
        (tmp / "revoked.txt").write_text("\n".join(revoked))
        port = free_port()
        config = {
            "cpu": server_cpu,
            "port": port,
            "http": report["method"]["http"],
            "loop": report["method"]["loop"],
            "jwks": keys.jwks,
            "revoked": str(tmp / "revoked.txt"),
            "redis_url": redis_store.url if redis_store else "redis://127.0.0.1:1/0",
            "prefix": redis_store.prefix if redis_store else SESSION_PREFIX,
        }
        (tmp / "server.json").write_text(json.dumps(config))
        argv = [sys.executable, str(Path(__file__).resolve()), "--serve", str(tmp / "server.json")]
        server = spawn("server", argv, tmp, server_cpu)
        report["processes"] = {
            "server": server.pid,
            "redis": redis_store.child.pid if redis_store and redis_store.child else None,
        }
        yield server, redis_store, keys, port, revoked
    finally:
        if server is not None:
            report["cleanup"] = {"server": server.stop()}
            print(f"\nserver {report['cleanup']['server']}")
        if redis_store is not None:
            removed = redis_store.cleanup()
            left = redis_store.cleanup()  # a second pass must find nothing
            how = redis_store.close()
            report.setdefault("cleanup", {}).update(
                redis_keys_removed=removed, redis_keys_left=left, redis=how
            )
            print(f"removed {removed} Redis keys under {redis_store.prefix}*; redis {how}")


async def wait_ready(server: Child, port: int, timeout: float = 60.0) -> None:
    """Wait until the server answers ``/_stats``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise BenchmarkError(
                f"the server exited (status {server.process.returncode}):\n{server.log_tail()}"
            )
        try:
            status, _ = await fetch(port, "/_stats")
        except (OSError, BenchmarkError):
            await asyncio.sleep(0.1)
            continue
        if status == 200:
            return
        await asyncio.sleep(0.1)
    raise BenchmarkError(f"the server did not answer within {timeout:g} s")


@dataclass
class Plan:
    """The run's parameters, resolved from the options."""

    seconds: float
    rounds: int
    warmup: float
    use_wrk: bool

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Plan:
        """Defaults for a full run or a quick one."""
        seconds = args.seconds or (0.5 if args.quick else 2.0)
        use_wrk = shutil.which("wrk") is not None and (
            args.wrk == "on" or (args.wrk == "auto" and not args.quick)
        )
        return cls(
            seconds=seconds,
            rounds=args.rounds or (2 if args.quick else 11),
            warmup=min(seconds, 0.3 if args.quick else 1.0),
            use_wrk=use_wrk,
        )


async def run(args: argparse.Namespace, report: dict[str, Any]) -> int:
    """The whole benchmark; fills ``report``; returns the exit code."""
    plan = Plan.from_args(args)
    server_cpu, generator_cpu = choose_cores()
    report["method"].update(
        seconds=plan.seconds,
        rounds=plan.rounds,
        warmup_s=plan.warmup,
        connections=args.connections,
        server_cpu=server_cpu,
        generator_cpu=generator_cpu,
        basis=args.basis,
        revoked_preloaded=args.revoked,
    )
    with (
        tempfile.TemporaryDirectory(prefix="twbench-verify-") as tmpdir,
        processes(args, Path(tmpdir), report) as (server, redis_store, keys, port, revoked),
    ):
        if generator_cpu is not None:
            os.sched_setaffinity(0, {generator_cpu})
        await wait_ready(server, port)
        setup = prepare(
            args, server=server, redis_store=redis_store, keys=keys, port=port, report=report
        )
        problems = await sanity_checks(setup, revoked[0])
        if problems:
            for problem in problems:
                print(f"  SANITY {problem}")
            report["sanity"] = problems
            return 2
        print(
            "\nsanity: /hs256 and /es256 accept a valid token and refuse none, a tampered"
            " signature, the other key's token and a revoked session; /redis accepts a live"
            " session and refuses none, an unknown id and a JWT"
        )
        summaries = await measure(setup, plan, report)
        if plan.use_wrk:
            report["wrk"] = await wrk_cross_check(
                setup, summaries, plan.seconds, max(2, plan.rounds // 2)
            )
        return judge(summaries, setup, args, report)


def prepare(
    args: argparse.Namespace,
    *,
    server: Child,
    redis_store: Redis | None,
    keys: Keys,
    port: int,
    report: dict[str, Any],
) -> Setup:
    """Print where everything runs; make the reused credentials and the fresh pools."""
    print(
        f"  {'cores':<13} server pid {server.pid} on {sorted(os.sched_getaffinity(server.pid))};"
        f" generator (this process) on {sorted(os.sched_getaffinity(0))}"
    )
    if redis_store is not None:
        where = "private redis-server" if redis_store.private else "EXTERNAL: shared counters"
        version = redis_store.version()
        print(f"  {'redis':<13} {version} at {redis_store.url} ({where})")
        report["versions"]["redis-server"] = version
        report["method"]["redis"] = {"url": redis_store.url, "private": redis_store.private}
    else:
        print(f"  {'redis':<13} unreachable: the redis-* scenarios are SKIPPED")
    minter = Minter(keys)
    conns = args.connections
    reused = {alg: [minter.token(alg, f"client-{i}") for i in range(conns)] for alg in ALGS}
    pools = {alg: Pool(_alg_fill(minter, alg)) for alg in ALGS}
    if redis_store is not None:
        sids = [secrets.token_urlsafe(16).encode() for _ in range(conns)]
        redis_store.create_sessions(sids, [f"client-{i}" for i in range(conns)])
        reused["redis"] = sids
        pools["redis"] = Pool(_session_fill(redis_store))
    heads = {path: request_head(path, port) for _, path, _ in SCENARIOS}
    server_cpu, generator_cpu = choose_cores()
    return Setup(
        port, server, redis_store, minter, conns, server_cpu, generator_cpu, reused, pools,
        heads,
    )  # fmt: skip


async def measure(setup: Setup, plan: Plan, report: dict[str, Any]) -> dict[str, Summary]:
    """The warm-up pass and the interleaved rounds; print the table."""
    scenarios = setup.scenarios()
    for scenario in scenarios:  # warm-up: caches, pools, connections, rate hint
        await drive(setup, scenario, plan.warmup, -1)
    windows: list[Window] = []
    print(
        f"\n{plan.rounds} rounds x {len(scenarios)} scenarios x {plan.seconds:g} s:",
        end="",
        flush=True,
    )
    for r in range(plan.rounds):
        shift = r % len(scenarios)
        for scenario in scenarios[shift:] + scenarios[:shift]:
            windows.append(await drive(setup, scenario, plan.seconds, r))
        print(f" {r + 1}", end="", flush=True)
    print(f"  (load avg {load_avg()})")
    summaries = {
        name: Summary(name, [w for w in windows if w.scenario == name]) for name, _, _ in scenarios
    }
    print_table(summaries, plan.rounds)
    made = ", ".join(f"{kind} {pool.made}" for kind, pool in setup.pools.items())
    print(
        f"  fresh credentials made between windows (none sent twice): {made}"
        f" ({setup.pool_seconds:.1f} s)"
    )
    if any(w.exhausted for w in windows):
        print("  NOTE: a fresh window used up its pool and ended early (its figures stand)")
    report["windows"] = [w.record() for w in windows]
    report["scenarios"] = {name: summary_record(s) for name, s in summaries.items()}
    return summaries


def judge(
    summaries: dict[str, Summary], setup: Setup, args: argparse.Namespace, report: dict[str, Any]
) -> int:
    """Print the targets and the work checks; return the exit code."""
    targets = make_targets(summaries, args.basis)
    print(
        "\nTargets (x = ratio of medians, paired = median of per-round ratios;"
        f" judged on {args.basis}; capacity = 1 / server CPU per request)"
    )
    for target in targets:
        print(f"  {target.line()}")
    report["targets"] = [t.record() for t in targets]
    checks = work_checks(summaries, setup.redis)
    report["checks"] = checks
    print("\nWork counted (store traffic from Redis INFO commandstats; verifier stats)")
    for check in checks:
        print(f"  {'PASS' if check['passed'] else 'FAIL'}  {check['label']}")
    if not all(c["passed"] for c in checks):
        return 2
    if args.strict and any(t.passed is False for t in targets):
        return 1
    return 0


def _alg_fill(minter: Minter, alg: str) -> Callable[[int], list[bytes]]:
    def fill(n: int) -> list[bytes]:
        return [minter.token(alg, f"user-{minter.serial + 1}") for _ in range(n)]

    return fill


def _session_fill(store: Redis) -> Callable[[int], list[bytes]]:
    def fill(n: int) -> list[bytes]:
        sids = [secrets.token_urlsafe(16).encode() for _ in range(n)]
        first = store.created
        store.create_sessions(sids, [f"user-{first + i}" for i in range(n)])
        return sids

    return fill


def summary_record(s: Summary) -> dict[str, Any]:
    """The JSON record of one scenario."""
    return {
        "rounds": len(s.windows),
        "requests": s.requests,
        "rps_median": s.rps,
        "p50_ms": s.latency_ms(0.5),
        "p99_ms": s.latency_ms(0.99),
        "server_cpu_us_per_request_median": s.cpu_us,
        "store_ops_per_request": s.per_request("store_ops"),
        "store_cpu_us_per_request": s.per_request("store_cpu") * 1e6,
        "signature_verifications_per_request": s.per_request("signature_verifications"),
        "session_lookups_per_request": s.per_request("session_lookups"),
        "server_cpu_us_per_request_ticks_median": s.median(
            lambda w: w.server_cpu_ticks / w.requests * 1e6
        ),
        "server_cpu_share_median": s.median(lambda w: w.server_cpu / w.elapsed),
        "server_wait_share_median": s.median(lambda w: w.server_wait / w.elapsed),
        "server_idle_share_median": s.median(lambda w: w.server_idle),
        "generator_wait_share_median": s.median(lambda w: w.generator_wait / w.elapsed),
        "server_core_busy_median": s.median(lambda w: w.server_core_busy),
        "generator_cpu_share_median": s.median(lambda w: w.generator_cpu / w.elapsed),
    }


def work_checks(summaries: dict[str, Summary], store: Redis | None) -> list[dict[str, Any]]:
    """The work done must be the work claimed: no store I/O for tokenward, one GET a session."""
    checks: list[dict[str, Any]] = []

    def check(label: str, passed: bool) -> None:
        checks.append({"label": label, "passed": passed})

    # With a private redis-server its counters are ours alone, so they can be exact.
    exact = store is not None and store.private
    for name, s in summaries.items():
        ops = s.per_request("store_ops")
        if not name.startswith("redis") and exact:
            check(f"{name}: Redis commands per request = {ops:.3f} (target 0)", ops == 0)
        if name.startswith("redis"):
            lookups = s.per_request("session_lookups")
            check(f"{name}: session lookups per request = {lookups:.3f} (1)", lookups == 1)
            if exact:
                gets = s.per_request("store_gets")
                # New pooled connections add a handshake command or two; nothing else.
                check(
                    f"{name}: Redis GETs per request = {gets:.3f}, all commands {ops:.4f} (1)",
                    gets == 1 and ops < 1.001,
                )
        if name.endswith("-fresh") and not name.startswith("redis"):
            sigs = s.per_request("signature_verifications")
            check(f"{name}: signature verifications per request = {sigs:.3f} (1)", sigs == 1)
        if name.endswith("-reused") and not name.startswith("redis"):
            sigs = s.per_request("signature_verifications")
            # Each connection's token is verified once; after a fresh flood has pushed it
            # out of the cache (oldest first), once more.
            check(f"{name}: signature verifications per request = {sigs:.4f} (~0)", sigs < 0.01)
    return checks


async def wrk_cross_check(
    setup: Setup, summaries: dict[str, Summary], seconds: float, reps: int
) -> list[dict[str, Any]]:
    """wrk and our client, interleaved, on the two fastest scenarios."""
    wrk = shutil.which("wrk") or "wrk"
    probe = subprocess.run(  # noqa: S603 - fixed argv: the wrk binary, --version
        [wrk, "--version"], capture_output=True, text=True, timeout=10, check=False
    )
    version = " ".join((probe.stdout or probe.stderr).split()[:2])
    print(
        f"\nGenerator cross-check: {version} (1 thread, {setup.connections} connections),"
        " interleaved with ours"
    )
    out: list[dict[str, Any]] = []
    for name, path in (("none", "/none"), ("hs256-reused", "/hs256")):
        if name not in summaries:
            continue
        token = setup.reused["hs256"][0]
        wrk_runs: list[dict[str, Any]] = []
        ours: list[Window] = []
        for rep in range(reps):  # alternate which goes first
            if rep % 2:
                ours.append(await drive(setup, (name, path, False), seconds, 1000 + rep))
            wrk_runs.append(run_wrk(setup, path, token, seconds))
            if not rep % 2:
                ours.append(await drive(setup, (name, path, False), seconds, 1000 + rep))
        rps = [r["rps"] / w.rps for r, w in zip(wrk_runs, ours, strict=True)]
        cpu = [
            r["server_cpu_us_per_request"] / w.cpu_us for r, w in zip(wrk_runs, ours, strict=True)
        ]
        row = {
            "scenario": name,
            "reps": reps,
            "wrk_rps": statistics.median(r["rps"] for r in wrk_runs),
            "wrk_cpu_us": statistics.median(r["server_cpu_us_per_request"] for r in wrk_runs),
            "wrk_server_idle": statistics.median(r["server_idle_share"] for r in wrk_runs),
            "wrk_cpu_share": statistics.median(r["wrk_cpu_share"] for r in wrk_runs),
            "ours_rps": statistics.median(w.rps for w in ours),
            "ours_cpu_us": statistics.median(w.cpu_us for w in ours),
            "ours_server_idle": statistics.median(w.server_idle for w in ours),
            "ours_cpu_share": statistics.median(w.generator_cpu / w.elapsed for w in ours),
            "wrk_over_ours_rps_paired": statistics.median(rps),
            "wrk_over_ours_cpu_paired": statistics.median(cpu),
            "wrk": wrk_runs,
            "ours": [w.record() for w in ours],
        }
        print(
            f"  {name:<13} wrk  {row['wrk_rps']:>6.0f} req/s, {row['wrk_cpu_us']:6.1f} us CPU/req,"
            f" server idle {row['wrk_server_idle']:.0%}, wrk CPU {row['wrk_cpu_share']:.0%}\n"
            f"  {'':<13} ours {row['ours_rps']:>6.0f} req/s, {row['ours_cpu_us']:6.1f} us CPU/req,"
            f" server idle {row['ours_server_idle']:.0%}, our CPU {row['ours_cpu_share']:.0%}\n"
            f"  {'':<13} wrk/ours (median of {reps} paired runs): req/s"
            f" {row['wrk_over_ours_rps_paired']:.2f}x, server CPU/req"
            f" {row['wrk_over_ours_cpu_paired']:.2f}x"
        )
        out.append(row)
    return out


def print_deny(results: list[dict[str, Any]]) -> None:
    """The deny set's memory lines."""
    sessions = results[0]["sessions"]
    print(f"\nDeny set (tokenward.service.DenyList) holding {sessions:,} revoked sessions")
    for r in results:
        print(
            f"  {r['method']:<11} {r['bytes'] / 2**20:7.1f} MiB"
            f"  ({r['bytes_per_session']:.0f} bytes per session; built in {r['build_cpu_s']:.1f} s"
            " CPU, including making the events)"
        )
        if "lookup_hit_ns" in r:
            print(
                f"  lookup      revoked sid {r['lookup_hit_ns']:.0f} ns,"
                f" other sid {r['lookup_miss_ns']:.0f} ns (DenyList.denies, CPU time)"
            )


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark (or, internally, the server or a deny-set child)."""
    args = parse_args(argv)
    if args.serve:
        serve(args.serve)
        return 0
    if args.deny_child:
        print(json.dumps(deny_memory_child(int(args.deny_child[0]), args.deny_child[1])))
        return 0
    signal.signal(signal.SIGTERM, _interrupt)  # a SIGTERM cleans up like Ctrl-C
    info = versions()
    http = resolve(args.http, "httptools", "h11")
    loop = resolve(args.loop, "uvloop", "asyncio")
    report: dict[str, Any] = {
        "versions": info,
        "method": {"quick": args.quick, "http": http, "loop": loop, "load_start": load_avg()},
    }
    print("tokenward resource-server benchmark (benchmarks/verify.py)")
    for name, version in info.items():
        print(f"  {name:<13} {version}")
    usable = len(os.sched_getaffinity(0))
    print(f"  {'cpus':<13} {usable} usable of {os.cpu_count()}")
    print(f"  {'load avg':<13} {load_avg()}")
    print(f"  {'uvicorn':<13} http={http} loop={loop}, access log off, one process")
    try:
        code = asyncio.run(run(args, report))
    except KeyboardInterrupt:
        print("\ninterrupted")
        return 130
    except BenchmarkError as exc:
        print(f"\nERROR: {exc}")
        return 2
    if code != 2 or "targets" in report:
        sessions = args.deny_sessions or (100_000 if args.quick else 1_000_000)
        deny = measure_deny_memory(sessions)
        print_deny(deny)
        report["deny_set"] = deny
    report["method"]["load_end"] = load_avg()
    print(f"\nload avg at start {report['method']['load_start']}, at end {load_avg()}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")
    return code


if __name__ == "__main__":
    sys.exit(main())
