"""Service benchmark: refreshes per second on each store backend, against the signature work.

Run from the repository root::

    .venv/bin/python benchmarks/service.py                        # every backend that is up
    .venv/bin/python benchmarks/service.py --quick --backends memory,sqlite
    .venv/bin/python benchmarks/service.py --backends redis-cluster \
        --redis-cluster-url redis+cluster://127.0.0.1:7000,127.0.0.1:7001
    .venv/bin/python benchmarks/service.py --json service.json

What is timed, in one process and one event loop:

* ``refresh``: :meth:`TokenService.refresh` on each backend (memory; SQLite, a file in a
  temporary directory; Redis at ``--redis-url`` under a unique key prefix; PostgreSQL at
  ``--postgres-dsn`` in a unique schema; and, only when named in ``--backends``, a
  running Redis Cluster at ``--redis-cluster-url`` under a unique key prefix). Each call
  presents the session's current refresh token and keeps the successor for the next
  call (a chain), so every call is a real rotation: verify the refresh token, sign an
  access and a refresh token, seal the successor, one atomic ``store.rotate``.
* ``signature only``: what a refresh must do cryptographically and nothing else, through
  :mod:`tokenward.jose` directly: one ES256 verify (with the refresh token's claim
  checks) and two ES256 signs, of claims shaped like the service's own. The difference
  ``refresh - signature only`` is what the store round trip and the service around it
  add.
* ``verify_access``: access-token verification, which must make no store I/O; once with
  the same token every call (the verified-token cache answers, the common case for a
  client that sends one token until it expires) and once with the cache cleared before
  each call (a full signature verification).

Store round trips are counted, not assumed: every backend counts them in ``operations``
(one per command, script, statement or transaction). The count is read before and after
every timed batch: a rotation must cost exactly one round trip, in every batch, and
``verify_access`` none; anything else prints FAIL and the exit status is 1.

Time comes from a :class:`tokenward.testing.FrozenClock` set to the current time and
advanced 1 ms per refresh, so sessions slide as in real use and no token expires
during a run, however loaded the machine.

Method (the house style of ``benchmarks/codec.py``): each case runs batches of N calls
(N calibrated so a batch takes about ``--batch-ms`` of wall time) with the garbage
collector off. Repetitions are INTERLEAVED: each round runs one batch of every case,
round-robin, starting one further along each round, so slow phases of this shared,
noisy 2-core machine hit every case alike. Figures are MEDIANS over rounds of the
per-call time; ``paired`` is the median over rounds of the ratio of two cases' batches
in the same round. Batches are timed on the wall clock (``perf_counter_ns``, primary:
the Redis and PostgreSQL servers do part of the work in other processes) and on this
process's CPU clock (``process_time_ns``, which includes the SQLite store's worker
thread but not the Redis or PostgreSQL server).

Ctrl-C stops the run and still closes the stores, deletes the Redis keys and the
PostgreSQL schema it created, and removes the temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import importlib.metadata
import json
import os
import platform
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from typing import Any, Protocol

from tokenward.errors import ConfigurationError
from tokenward.jose import ClaimRules, Key, jwt
from tokenward.service import Client, TokenPair, TokenService
from tokenward.service import TokenPolicy as Policy
from tokenward.stores import MemoryStore, Store, StoreError
from tokenward.testing import FrozenClock

ALL_BACKENDS = ("memory", "sqlite", "redis", "postgres")
# Run only when named in --backends: it needs a running cluster (--redis-cluster-url).
OPT_IN_BACKENDS = ("redis-cluster",)
SERVER_BACKENDS = ("redis", "redis-cluster", "postgres")  # the store works in another process
DEFAULT_REDIS = os.environ.get("TOKENWARD_TEST_REDIS", "redis://127.0.0.1:6379/0")
DEFAULT_POSTGRES = os.environ.get(
    "TOKENWARD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)
ISSUER = "https://auth.example.com"
AUDIENCE = "https://api.example.com"
SIGNATURE = "signature only"
VERIFY_CACHED = "verify_access, cached"
VERIFY_FULL = "verify_access, uncached"
CLOCK_STEP = 0.001  # seconds the frozen clock advances per refresh


class CountingStore(Store, Protocol):
    """A store that counts its round trips (every tokenward backend does)."""

    operations: int


# -- timing ---------------------------------------------------------------------------------


@dataclass
class Case:
    """One timed thing: an async or a plain callable, and the store it must (not) touch."""

    name: str
    call: Callable[[], Awaitable[object]] | None = None
    sync_call: Callable[[], object] | None = None
    store: CountingStore | None = None
    ops_per_call: int | None = None  # expected store round trips per call; None: unchecked
    ops_seen: list[int] = field(default_factory=list)  # round trips per batch, as counted
    calls_checked: int = 0

    def ops(self) -> int:
        """The store's round-trip counter now (0 without a store)."""
        return self.store.operations if self.store is not None else 0


async def time_batch(case: Case, n: int) -> tuple[int, int]:
    """Run ``case`` ``n`` times with the GC off; return elapsed ``(wall, cpu)`` nanoseconds.

    Also records how many store round trips the batch made.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        ops_before = case.ops()
        cpu_start = time.process_time_ns()
        start = time.perf_counter_ns()
        if case.call is not None:
            call = case.call
            for _ in repeat(None, n):
                await call()
        else:
            assert case.sync_call is not None
            sync_call = case.sync_call
            for _ in repeat(None, n):
                sync_call()
        wall = time.perf_counter_ns() - start
        cpu = time.process_time_ns() - cpu_start
        ops = case.ops() - ops_before
    finally:
        if was_enabled:
            gc.enable()
    if case.ops_per_call is not None:
        case.ops_seen.append(ops)
        case.calls_checked += n
    return wall, cpu


async def calibrate(case: Case, target_ns: int) -> int:
    """Find a batch size N so that one batch takes about ``target_ns`` of wall time."""
    n = 1
    while True:
        elapsed = (await time_batch(case, n))[0]
        if elapsed >= target_ns // 8 or n >= 1 << 20:
            return max(1, round(n * target_ns / max(elapsed, 1)))
        n *= 4


@dataclass
class Series:
    """Per-call timings of one case, one sample per round, on both clocks."""

    name: str
    batch: int
    wall_ns: list[float] = field(default_factory=list)
    cpu_ns: list[float] = field(default_factory=list)

    def samples(self, clock: str) -> list[float]:
        """Per-call nanoseconds of each round on ``clock`` (``wall`` or ``cpu``)."""
        return self.wall_ns if clock == "wall" else self.cpu_ns

    def median_us(self, clock: str = "wall") -> float:
        """Median over rounds of the per-call time, in microseconds."""
        return statistics.median(self.samples(clock)) / 1000

    def quantile_us(self, q: float, clock: str = "wall") -> float:
        """Interpolated quantile ``q`` over rounds of the per-call time, in microseconds."""
        data = sorted(self.samples(clock))
        pos = q * (len(data) - 1)
        lo = int(pos)
        hi = min(lo + 1, len(data) - 1)
        return (data[lo] + (data[hi] - data[lo]) * (pos - lo)) / 1000

    def paired_ratio(self, base: Series, clock: str = "wall") -> float:
        """Median over rounds of this / ``base``, each pair timed in the same round."""
        pairs = zip(self.samples(clock), base.samples(clock), strict=True)
        return statistics.median(a / b for a, b in pairs)


async def run_rounds(cases: list[Case], reps: int, target_ns: int) -> dict[str, Series]:
    """Time every case, interleaved round-robin, ``reps`` times."""
    for case in cases:  # warm-up: caches, prepared statements, lazy imports
        await time_batch(case, 10)
    series = {c.name: Series(c.name, await calibrate(c, target_ns)) for c in cases}
    for rep in range(reps):
        gc.collect()
        for case in cases[rep % len(cases) :] + cases[: rep % len(cases)]:
            s = series[case.name]
            wall, cpu = await time_batch(case, s.batch)
            s.wall_ns.append(wall / s.batch)
            s.cpu_ns.append(cpu / s.batch)
    return series


# -- backends -------------------------------------------------------------------------------


@dataclass
class Backend:
    """An opened store, what it is, and how to put things back afterwards."""

    name: str
    store: CountingStore
    description: str
    cleanup: Callable[[], Awaitable[str]]


async def open_backend(name: str, args: argparse.Namespace, tmp: Path, tag: str) -> Backend:
    """Open backend ``name``; raise :class:`BackendUnavailableError` if its server is down."""
    if name == "memory":
        memory = MemoryStore()

        async def nothing() -> str:
            return "nothing to clean"

        return Backend(name, memory, "in-process dict", nothing)
    if name == "sqlite":
        from tokenward.stores.sqlite import SQLiteStore

        path = tmp / "service-bench.db"
        sqlite = await SQLiteStore.open(path)

        async def close_sqlite() -> str:
            await sqlite.close()
            return f"closed {path.name} (the temporary directory goes at exit)"

        return Backend(name, sqlite, f"file {path} (WAL)", close_sqlite)
    if name in ("redis", "redis-cluster"):
        return await _open_redis(
            name, args.redis_url if name == "redis" else args.redis_cluster_url, tag
        )
    if name == "postgres":
        try:
            from tokenward.stores.postgres import PostgresStore
        except ImportError as exc:
            raise BackendUnavailableError(f"asyncpg is not installed ({exc.name})") from None
        schema = f"twbench_{tag}"
        try:
            pg = await PostgresStore.connect(args.postgres_dsn, schema=schema, timeout=3.0)
        except (StoreError, OSError) as exc:
            raise BackendUnavailableError(f"{_host(args.postgres_dsn)} is down ({exc})") from None
        version = await _postgres_version(args.postgres_dsn)

        async def drop_pg() -> str:
            try:
                await pg.drop()
            finally:
                await pg.close()
            return f"dropped schema {schema}"

        description = f"PostgreSQL {version} at {_host(args.postgres_dsn)}, schema {schema}"
        return Backend(name, pg, description, drop_pg)
    raise ValueError(f"unknown backend {name!r}")


async def _open_redis(name: str, url: str | None, tag: str) -> Backend:
    """Redis at ``url``: one server, or a cluster (``redis+cluster://``)."""
    try:
        from tokenward.stores.redis import RedisStore
    except ImportError as exc:
        raise BackendUnavailableError(f"the redis client is not installed ({exc.name})") from None
    if not url:
        raise BackendUnavailableError("give a running cluster's --redis-cluster-url")
    prefix = f"twbench-{tag}"
    try:
        redis = await RedisStore.connect(url, prefix=prefix, timeout=2.0)
    except (StoreError, ConfigurationError, OSError) as exc:
        raise BackendUnavailableError(f"{_host(url)} is down ({exc})") from None
    version = await _redis_version(url)

    async def drop_redis() -> str:
        try:
            await redis.drop()
            left = await _redis_keys_left(url, prefix)
        finally:
            await redis.close()
        return f"deleted every key under prefix {prefix}: ({left} left)"

    kind = "Redis Cluster" if name == "redis-cluster" else "Redis"
    description = f"{kind} {version} at {_host(url)}, key prefix {prefix}"
    return Backend(name, redis, description, drop_redis)


class BackendUnavailableError(Exception):
    """A backend's server (or client library) is not there: skip it with a note."""


def _host(url: str) -> str:
    """``host:port`` of a URL, without user or password."""
    rest = url.partition("://")[2]
    return rest.rpartition("@")[2].partition("/")[0]


def _redis_client(url: str) -> Any:
    """A plain client of the Redis server, or of the Redis Cluster, at ``url``."""
    if url.partition("://")[0].endswith("+cluster"):
        from redis.asyncio.cluster import ClusterNode, RedisCluster

        from tokenward.stores._redis_cluster import parse_cluster_url

        where = parse_cluster_url(url)
        return RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in where.nodes],
            username=where.username,
            password=where.password,
            ssl=where.tls,
            socket_timeout=2.0,
        )
    from redis.asyncio import Redis

    return Redis.from_url(url, socket_timeout=2.0)


async def _redis_version(url: str) -> str:
    client = _redis_client(url)
    try:
        info = await client.info("server")
        return str(info.get("redis_version", "?"))
    except Exception:  # noqa: BLE001 - a version string is decoration; never fail on it
        return "?"
    finally:
        await client.aclose()


async def _redis_keys_left(url: str, prefix: str) -> int:
    client = _redis_client(url)  # A cluster's scan_iter visits every primary.
    try:
        return len([k async for k in client.scan_iter(match=f"{prefix}:*", count=500)])
    finally:
        await client.aclose()


async def _postgres_version(dsn: str) -> str:
    import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information

    try:
        connection = await asyncpg.connect(dsn, timeout=3.0)
    except Exception:  # noqa: BLE001 - decoration only
        return "?"
    try:
        return str(await connection.fetchval("SHOW server_version"))
    finally:
        await connection.close()


# -- the cases ------------------------------------------------------------------------------


def refresh_case(name: str, service: TokenService, token: str, clock: FrozenClock) -> Case:
    """A chain of refreshes: each call presents the current token and keeps the successor."""
    current = [token]

    async def refresh() -> None:
        pair = await service.refresh(current[0])
        current[0] = pair.refresh_token
        clock.advance(CLOCK_STEP)

    store: CountingStore = service.store  # type: ignore[assignment]
    return Case(name, call=refresh, store=store, ops_per_call=1)


def signature_case(access_claims: dict[str, Any], refresh_claims: dict[str, Any]) -> Case:
    """One ES256 verify (with the refresh token's claim rules) and two ES256 signs."""
    key = Key.generate("ES256", kid="bench")
    rules = ClaimRules.create(
        issuer=ISSUER,
        audience=(ISSUER, AUDIENCE),
        require=("exp", "iat", "sub", "sid", "jti"),
    )
    presented = jwt.encode(refresh_claims, key, typ="rt+jwt")
    now = float(refresh_claims["iat"])
    algorithms = ("ES256",)

    def work() -> None:
        jwt.decode_with_header(presented, key, algorithms=algorithms, rules=rules, now=now)
        jwt.encode(access_claims, key, typ="at+jwt")
        jwt.encode(refresh_claims, key, typ="rt+jwt")

    return Case(SIGNATURE, sync_call=work)


def verify_cases(service: TokenService, access_token: str) -> list[Case]:
    """verify_access with the cache answering, and with the cache cleared before each call."""
    store: CountingStore = service.store  # type: ignore[assignment]
    verifier = service.verifier

    def cached() -> None:
        service.verify_access(access_token)

    def uncached() -> None:
        verifier.clear_cache()
        service.verify_access(access_token)

    return [
        Case(VERIFY_CACHED, sync_call=cached, store=store, ops_per_call=0),
        Case(VERIFY_FULL, sync_call=uncached, store=store, ops_per_call=0),
    ]


async def sanity_check(service: TokenService, issued: TokenPair, subject: str) -> list[str]:
    """A refresh on this backend must rotate (a new, working pair) for one round trip."""
    problems = []
    store: CountingStore = service.store  # type: ignore[assignment]
    token = issued.refresh_token
    before = store.operations
    pair = await service.refresh(token)
    trips = store.operations - before
    if trips != 1:
        problems.append(f"a refresh made {trips} store round trips")
    if pair.refresh_token == token:
        problems.append("the refresh token did not change")
    before = store.operations
    if service.verify_access(pair.access_token).sub != subject:
        problems.append("the new access token does not carry the subject")
    if store.operations != before:
        problems.append("verify_access touched the store")
    return problems


# -- reporting ------------------------------------------------------------------------------


def versions() -> dict[str, str]:
    """Versions of Python, OpenSSL and every distribution involved."""
    from cryptography.hazmat.backends.openssl.backend import backend

    found = {
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "openssl": backend.openssl_version_text(),
    }
    for dist in ("tokenward", "cryptography", "redis", "asyncpg"):
        try:
            found[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            found[dist] = "not installed"
    found["sqlite"] = __import__("sqlite3").sqlite_version
    found["source"] = source_fingerprint()
    return found


def source_fingerprint() -> str:
    """A short hash of the service, store and codec sources these figures measured."""
    import tokenward

    root = Path(tokenward.__file__).parent
    digest = hashlib.sha256()
    for sub in ("jose", "service", "stores"):
        for path in sorted((root / sub).glob("*.py")):
            digest.update(f"{sub}/{path.name}".encode() + b"\0" + path.read_bytes())
    return f"sha256:{digest.hexdigest()[:12]} (tokenward/{{jose,service,stores}})"


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def _cpus() -> str:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{usable} usable of {os.cpu_count()}"


def print_refresh_table(
    backends: list[str], series: dict[str, Series], cases: dict[str, Case], reps: int
) -> list[dict[str, Any]]:
    """The per-backend table; returns its rows for the JSON report."""
    sig = series[SIGNATURE]
    print(
        f"\nRefresh: TokenService.refresh, one rotation per call  ({reps} interleaved reps;"
        " median per call)"
    )
    w = max(9, *(len(name) for name in backends))
    print(f"  {'':<{w}} {'wall clock':-^78}  {'this process CPU':-^30}")
    print(
        f"  {'backend':<{w}} {'refresh us':>10} {'p25..p75 us':>15} {'refresh/s':>9}"
        f" {'trips':>5} {'sig us':>7} {'store+ovh us':>12} {'x sig':>6} {'paired':>6}"
        f"  {'refresh us':>10} {'store+ovh us':>12} {'x sig':>6}"
    )
    rows = []
    sig_us = sig.median_us()
    sig_cpu = sig.median_us("cpu")
    for name in backends:
        s = series[name]
        refresh_us = s.median_us()
        refresh_cpu = s.median_us("cpu")
        spread = f"{s.quantile_us(0.25):.1f}..{s.quantile_us(0.75):.1f}"
        paired = s.paired_ratio(sig)
        case = cases[name]
        trips = sum(case.ops_seen) / case.calls_checked
        print(
            f"  {name:<{w}} {refresh_us:>10.1f} {spread:>15} {1e6 / refresh_us:>9.0f}"
            f" {trips:>5.2f} {sig_us:>7.1f} {refresh_us - sig_us:>12.1f}"
            f" {refresh_us / sig_us:>5.2f}x {paired:>5.2f}x"
            f"  {refresh_cpu:>10.1f} {refresh_cpu - sig_cpu:>12.1f} {refresh_cpu / sig_cpu:>5.2f}x"
        )
        rows.append(
            {
                "backend": name,
                "batch": s.batch,
                "refresh_us": refresh_us,
                "refresh_p25_us": s.quantile_us(0.25),
                "refresh_p75_us": s.quantile_us(0.75),
                "refreshes_per_second": 1e6 / refresh_us,
                "refresh_cpu_us": refresh_cpu,
                "signature_cpu_us": sig_cpu,
                "store_and_overhead_cpu_us": refresh_cpu - sig_cpu,
                "x_signature_cpu": refresh_cpu / sig_cpu,
                "store_round_trips_per_refresh": trips,
                "signature_us": sig_us,
                "store_and_overhead_us": refresh_us - sig_us,
                "x_signature": refresh_us / sig_us,
                "paired_x_signature": paired,
                "wall_per_call_us": [ns / 1000 for ns in s.wall_ns],
                "cpu_per_call_us": [ns / 1000 for ns in s.cpu_ns],
            }
        )
    print(
        f"  signature only = one ES256 verify + two ES256 signs (tokenward.jose), same rounds:"
        f" {sig.median_us():.1f} us wall, {sig.median_us('cpu'):.1f} us cpu"
        f" (p25..p75 {sig.quantile_us(0.25):.1f}..{sig.quantile_us(0.75):.1f})"
    )
    print(
        "  store+overhead = refresh - signature only: the store round trip, sealing the"
        " successor, and the service around them; x sig = refresh / signature only"
        " (ratio of medians), paired = median of per-round ratios; trips = store round"
        " trips per refresh, counted; CPU = this process only (not the Redis or PostgreSQL"
        " server, whose share of a refresh shows on the wall clock only)"
    )
    return rows


def print_verify_table(series: dict[str, Series]) -> list[dict[str, Any]]:
    """The verify_access lines; returns their rows for the JSON report."""
    print("\nverify_access (no store I/O)")
    print(f"  {'case':<26} {'us':>8} {'p25..p75 us':>13} {'per second':>11} {'cpu us':>7}")
    rows = []
    for name in (VERIFY_CACHED, VERIFY_FULL):
        s = series[name]
        us = s.median_us()
        spread = f"{s.quantile_us(0.25):.2f}..{s.quantile_us(0.75):.2f}"
        print(f"  {name:<26} {us:>8.2f} {spread:>13} {1e6 / us:>11.0f} {s.median_us('cpu'):>7.2f}")
        rows.append(
            {
                "case": name,
                "batch": s.batch,
                "us": us,
                "per_second": 1e6 / us,
                "cpu_us": s.median_us("cpu"),
                "wall_per_call_us": [ns / 1000 for ns in s.wall_ns],
            }
        )
    print(
        "  cached: the same token every call (the verified-token cache answers);"
        " uncached: the cache is cleared before each call (a full ES256 verification)"
    )
    return rows


def check_lines(cases: list[Case]) -> list[tuple[bool, str]]:
    """PASS/FAIL lines for the round-trip counts."""
    out = []
    for case in cases:
        if case.ops_per_call is None:
            continue
        expected = case.ops_per_call
        batches = len(case.ops_seen)
        total = sum(case.ops_seen)
        calls = case.calls_checked
        per_call = total / calls if calls else float("nan")
        if expected == 0:
            ok = total == 0
            line = f"{case.name}: {total} store operations in {calls} calls (target 0)"
        else:
            ok = calls > 0 and total == expected * calls
            line = (
                f"{case.name}: store round trips per refresh = {per_call:.3f}"
                f" ({total} in {calls} refreshes, {batches} batches; target exactly {expected})"
            )
        out.append((ok, line))
    return out


# -- main -----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="few short reps (a smoke test)")
    parser.add_argument(
        "--backends",
        default=",".join(ALL_BACKENDS),
        help=f"comma-separated backends (default: {','.join(ALL_BACKENDS)};"
        f" also: {','.join(OPT_IN_BACKENDS)})",
    )
    parser.add_argument("--json", metavar="OUT", type=Path, help="write every figure to OUT")
    parser.add_argument("--reps", type=int, help="interleaved rounds (default 31; quick 5)")
    parser.add_argument(
        "--batch-ms", type=float, help="target batch duration (default 40; quick 4)"
    )
    parser.add_argument("--redis-url", default=DEFAULT_REDIS, help=f"default {DEFAULT_REDIS}")
    parser.add_argument(
        "--postgres-dsn", default=DEFAULT_POSTGRES, help=f"default {DEFAULT_POSTGRES}"
    )
    parser.add_argument(
        "--redis-cluster-url",
        metavar="URL",
        help="a running Redis Cluster, redis+cluster://host:port[,host:port...], for the"
        " redis-cluster backend (not in the default set)",
    )
    return parser.parse_args(argv)


async def run(args: argparse.Namespace, report: dict[str, Any]) -> int:
    """Open the backends, time everything, print the tables; clean up whatever happens."""
    names = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = sorted(set(names) - set(ALL_BACKENDS) - set(OPT_IN_BACKENDS))
    if unknown:
        print(f"unknown backends: {', '.join(unknown)}", file=sys.stderr)
        return 2
    reps = args.reps or (5 if args.quick else 31)
    batch_ms = args.batch_ms or (4.0 if args.quick else 40.0)
    report["method"].update(reps=reps, batch_ms=batch_ms, quick=args.quick)
    print(
        f"  {'method':<13} {reps} interleaved reps x batch ~{batch_ms:g} ms wall, GC off,"
        " median; wall clock primary, process CPU recorded"
    )

    tmp = Path(tempfile.mkdtemp(prefix="tokenward-service-bench-"))
    tag = secrets.token_hex(4)
    opened: list[Backend] = []
    clock = FrozenClock(time.time())
    try:
        for name in names:
            try:
                backend = await open_backend(name, args, tmp, tag)
            except BackendUnavailableError as exc:
                print(f"  {name:<13} SKIPPED: {exc}")
                report["skipped"][name] = str(exc)
                continue
            opened.append(backend)
            print(f"  {name:<13} {backend.description}")
        if not opened:
            print("no backend could be opened")
            return 2

        cases, problems = await build_cases(opened, clock)
        for problem in problems:
            print(f"SANITY FAILED {problem}")
        if problems:
            return 2
        series = await run_rounds(cases, reps, int(batch_ms * 1e6))
        return report_results([b.name for b in opened], cases, series, reps, report)
    finally:
        for backend in opened:
            try:
                note = await backend.cleanup()
            except Exception as exc:  # noqa: BLE001 - report and go on cleaning the others
                note = f"CLEANUP FAILED: {type(exc).__name__}: {exc}"
            print(f"cleanup {backend.name}: {note}")
            report["cleanup"][backend.name] = note
        shutil.rmtree(tmp, ignore_errors=True)


async def build_cases(opened: list[Backend], clock: FrozenClock) -> tuple[list[Case], list[str]]:
    """A refresh chain per backend, the signature work and verify_access; sanity-checked."""
    policy = Policy(issuer=ISSUER, audience=AUDIENCE)
    client = Client("web", user_agent="bench/1.0", ip="127.0.0.1")
    subject = "u-bench"
    cases: list[Case] = []
    problems: list[str] = []
    first: tuple[TokenService, str, str] | None = None
    for backend in opened:
        service = await TokenService.create(backend.store, policy, clock=clock)
        pair = await service.issue(subject, scope="read write", client=client)
        problems += [f"{backend.name}: {p}" for p in await sanity_check(service, pair, subject)]
        # The sanity check rotated once; start the timed chain from a new session.
        pair = await service.issue(subject, scope="read write", client=client)
        cases.append(refresh_case(backend.name, service, pair.refresh_token, clock))
        if first is None:
            first = (service, pair.access_token, pair.refresh_token)
    assert first is not None
    service, access_token, refresh_token = first
    # The signature work signs claims shaped exactly like the service's own tokens.
    access_claims = jwt.inspect_unverified(access_token).claims
    refresh_claims = jwt.inspect_unverified(refresh_token).claims
    cases.append(signature_case(access_claims, refresh_claims))
    cases += verify_cases(service, access_token)
    return cases, problems


def report_results(
    backends: list[str],
    cases: list[Case],
    series: dict[str, Series],
    reps: int,
    report: dict[str, Any],
) -> int:
    """Print the tables and the checks; return the exit status (1 if a check failed)."""
    by_name = {c.name: c for c in cases}
    report["refresh"] = print_refresh_table(backends, series, by_name, reps)
    report["verify_access"] = print_verify_table(series)
    sig = series[SIGNATURE]
    report["signature_only"] = {
        "us": sig.median_us(),
        "cpu_us": sig.median_us("cpu"),
        "batch": sig.batch,
        "wall_per_call_us": [ns / 1000 for ns in sig.wall_ns],
    }
    # Memory, SQLite and the pure-CPU cases run in this process only: their CPU share
    # of wall time says whether they had a CPU or waited for one.
    local = [s for n, s in series.items() if n not in SERVER_BACKENDS]
    cpu = sum(sum(s.cpu_ns) * s.batch for s in local)
    wall = sum(sum(s.wall_ns) * s.batch for s in local)
    local_share = cpu / wall if wall else 1.0
    report["method"]["cpu_share_in_process_cases"] = local_share
    print(f"\nload avg at end: {_load()}")
    print(
        f"CPU share: the in-process cases ran on a CPU {local_share:.0%} of their wall"
        " time (below ~90% the machine was oversubscribed and wall figures include"
        " waiting for a CPU)"
    )

    print("\nChecks")
    checks = check_lines(cases)
    for ok, line in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {line}")
    report["checks"] = [{"passed": ok, "line": line} for ok, line in checks]
    return 0 if all(ok for ok, _ in checks) else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; return the process exit code."""
    args = parse_args(argv)
    info = versions()
    print("tokenward service benchmark")
    for name, version in info.items():
        print(f"  {name:<13} {version}")
    print(f"  {'cpus':<13} {_cpus()}")
    print(f"  {'load avg':<13} {_load()}")
    report: dict[str, Any] = {"versions": info, "method": {}, "skipped": {}, "cleanup": {}}
    try:
        status = asyncio.run(run(args, report))
    except KeyboardInterrupt:
        print("\ninterrupted: stores closed, benchmark keys and schema dropped, temp dir removed")
        return 130
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return status


if __name__ == "__main__":
    sys.exit(main())
