"""Revocation delay: from ``revoke_session()`` returning to the first refusal in ANOTHER process.

Run from the repository root (Redis and PostgreSQL on loopback, as for the tests)::

    .venv/bin/python benchmarks/revocation.py                      # 200 revocations per feed
    .venv/bin/python benchmarks/revocation.py --quick              # 20, a smoke run
    .venv/bin/python benchmarks/revocation.py --feeds sqlite --sqlite-interval 1.0
    .venv/bin/python benchmarks/revocation.py --json revocation.json --strict

Two processes per feed. This one is the auth server: a :class:`TokenService` over the
store. The other (``multiprocessing``, spawn) is a resource server that knows only the
published JWKS and the store's revocation feed: a :class:`Verifier` with a
:class:`RevocationFollower` over ``store.revocation_feed()``. For each revocation:

1. the auth process issues a fresh session and sends its access token to the verifier,
   which checks that it is accepted and says so;
2. after a random pause (up to 5 ms for Redis and PostgreSQL, up to one poll interval
   for SQLite, so revocations fall at every phase of the poll schedule), the auth
   process calls ``revoke_session()`` and reads the clock the moment it returns;
3. the verifier checks the token again each time its follower applies an event
   (``--check notify``, the default: exactly when a request would first be refused), or
   in a tight loop that yields to the event loop between checks (``--check spin``), and
   reads the clock at the first refusal.

The delay is the difference of the two readings. Clock: ``time.monotonic()``, which on
Linux is ``CLOCK_MONOTONIC``, one clock for the whole system, so readings taken in two
processes can be subtracted (``time.perf_counter()`` readings could not be, in general).
A delay can be slightly negative: Redis publishes inside the script that records the
event, so the verifier may refuse before the reply has reached ``revoke_session()``.

A few warm-up revocations (not counted) make sure the feed is live before timing. The
figures include the verifier's scheduling: on a loaded machine they are upper bounds.

Targets (issue 5): p99 under 100 ms for Redis and PostgreSQL on loopback; SQLite within
its poll interval plus 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tokenward.jose import KeySet
from tokenward.service import (
    DenyList,
    RevocationFollower,
    SessionRevokedTokenError,
    StaticKeys,
    TokenPolicy,
    TokenService,
    Verifier,
)
from tokenward.stores.base import RevocationFeed, SessionStore, StoreError

ISSUER = "https://auth.bench"
AUDIENCE = "api"
WAIT = 30.0  # bound on every wait for the other process
WARMUP = 3
PUSH_TARGET = 0.100
SQLITE_SLACK = 0.050
FEEDS = ("redis", "postgres", "sqlite")


@dataclass(frozen=True)
class Spec:
    """How the verifier process reaches the store, and what it checks."""

    feed: str
    location: str  # URL, DSN or SQLite file
    namespace: str  # Redis prefix or PostgreSQL schema
    jwks: dict[str, Any]
    sqlite_interval: float
    check: str


# -- the verifier process --------------------------------------------------------------


async def _open(feed: str, location: str, namespace: str) -> SessionStore:
    if feed == "redis":
        from tokenward.stores.redis import RedisStore

        return await RedisStore.connect(location, prefix=namespace)
    if feed == "postgres":
        from tokenward.stores.postgres import PostgresStore

        return await PostgresStore.connect(location, schema=namespace)
    from tokenward.stores.sqlite import SQLiteStore

    return await SQLiteStore.open(location)


def _feed_of(store: SessionStore, spec: Spec) -> RevocationFeed:
    from tokenward.stores.sqlite import SQLiteStore

    if isinstance(store, SQLiteStore):
        return store.revocation_feed(poll_interval=spec.sqlite_interval)
    feed: RevocationFeed = store.revocation_feed()  # type: ignore[attr-defined]
    return feed


def _refused(verifier: Verifier, token: str) -> bool:
    try:
        verifier.verify(token)
    except SessionRevokedTokenError:
        return True
    return False


async def _wait_for_refusal(
    verifier: Verifier, follower: RevocationFollower, token: str, *, spin: bool
) -> None:
    async with asyncio.timeout(WAIT):
        while True:
            # Read before checking: an event applied in between ends the wait at once.
            target = follower.deny.last_seq + 1
            if _refused(verifier, token):
                return
            if spin:
                await asyncio.sleep(0)
            else:
                await follower.wait_until_applied(target)


async def _verifier(spec: Spec, pipe: Connection) -> None:
    store = await _open(spec.feed, spec.location, spec.namespace)
    try:
        follower = RevocationFollower(_feed_of(store, spec), DenyList())
        verifier = Verifier(
            StaticKeys(KeySet.from_jwks(spec.jwks)),
            issuer=ISSUER,
            audience=AUDIENCE,
            follower=follower,
        )
        async with follower.running():
            async with asyncio.timeout(WAIT):
                await follower.wait_until_connected()
            pipe.send(("ready", None))
            while True:
                kind, token = await asyncio.to_thread(pipe.recv)
                if kind == "stop":
                    break
                if _refused(verifier, token):
                    raise RuntimeError("a fresh token was refused")
                pipe.send(("watching", None))
                await _wait_for_refusal(verifier, follower, token, spin=spec.check == "spin")
                pipe.send(("refused", time.monotonic()))
            stats = {
                "events_applied": follower.events_applied,
                "disconnects": follower.disconnects,
                "signature_verifications": verifier.stats.signature_verifications,
            }
            pipe.send(("stats", stats))
    finally:
        await store.close()


def verifier_process(spec: Spec, pipe: Connection) -> None:
    """Entry point of the verifier process (spawned)."""
    try:
        asyncio.run(_verifier(spec, pipe))
    except BaseException as exc:
        pipe.send(("error", f"{type(exc).__name__}: {exc}"))
        raise
    finally:
        pipe.close()


# -- the auth process ------------------------------------------------------------------


class Peer:
    """The verifier process and our end of its pipe."""

    def __init__(self, spec: Spec) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipe, theirs = context.Pipe()
        self.process = context.Process(target=verifier_process, args=(spec, theirs))
        self.process.start()
        theirs.close()

    async def receive(self, expected: str) -> Any:
        if not await asyncio.to_thread(self.pipe.poll, WAIT):
            raise TimeoutError(f"no {expected!r} from the verifier process within {WAIT:g} s")
        kind, value = self.pipe.recv()
        if kind != expected:
            raise RuntimeError(f"verifier process: expected {expected!r}, got {kind}: {value}")
        return value

    async def close(self) -> None:
        await asyncio.to_thread(self.process.join, WAIT)
        if self.process.is_alive():
            self.process.kill()
            await asyncio.to_thread(self.process.join, WAIT)
        self.pipe.close()


@dataclass
class Result:
    feed: str
    delays: list[float]
    target: float
    stats: dict[str, int]
    sqlite_interval: float | None = None

    def quantile(self, q: float) -> float:
        """Nearest-rank quantile (p99 of 200 samples is the second largest)."""
        ordered = sorted(self.delays)
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)]

    @property
    def passed(self) -> bool:
        return self.quantile(0.99) < self.target


async def measure(feed: str, location: str, count: int, args: argparse.Namespace) -> Result:
    namespace = "bench" + uuid.uuid4().hex[:10]
    store = await _open(feed, location, namespace)
    peer: Peer | None = None
    try:
        service = await TokenService.create(store, TokenPolicy(issuer=ISSUER, audience=AUDIENCE))
        jwks = dict(service.keyring.jwks())
        spec = Spec(feed, location, namespace, jwks, args.sqlite_interval, args.check)
        peer = Peer(spec)
        await peer.receive("ready")
        pause = args.sqlite_interval if feed == "sqlite" else 0.005
        delays: list[float] = []
        for i in range(WARMUP + count):
            pair = await service.issue(f"user{i}", scope="read")
            peer.pipe.send(("watch", pair.access_token))
            await peer.receive("watching")
            await asyncio.sleep(random.uniform(0, pause))
            await service.revoke_session(pair.sid)
            revoked_at = time.monotonic()
            refused_at: float = await peer.receive("refused")
            if i >= WARMUP:
                delays.append(refused_at - revoked_at)
        peer.pipe.send(("stop", None))
        stats: dict[str, int] = await peer.receive("stats")
    finally:
        if peer is not None:
            await peer.close()
        drop = getattr(store, "drop", None)
        if drop is not None:
            await drop()
        await store.close()
    if feed == "sqlite":
        return Result(
            feed, delays, args.sqlite_interval + SQLITE_SLACK, stats, args.sqlite_interval
        )
    return Result(feed, delays, PUSH_TARGET, stats)


def _reachable(url: str) -> bool:
    import socket

    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), 1):
            return True
    except OSError:
        return False


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:8.2f}"


def print_report(results: Sequence[Result]) -> None:
    print(f"\n{'feed':<16}   n   p50 ms   p90 ms   p99 ms   max ms   min ms  disconnects")
    for r in results:
        name = f"{r.feed} ({r.sqlite_interval:g} s)" if r.sqlite_interval else r.feed
        print(
            f"{name:<16} {len(r.delays):>3} {_ms(statistics.median(r.delays))} "
            f"{_ms(r.quantile(0.9))} {_ms(r.quantile(0.99))} {_ms(max(r.delays))} "
            f"{_ms(min(r.delays))}  {r.stats.get('disconnects', 0):>11}"
        )
    print(f"\nload avg at end: {_load()}")
    print("\nTargets")
    for r in results:
        verdict = "PASS" if r.passed else "FAIL"
        limit = f"{r.target * 1000:.0f} ms"
        if r.sqlite_interval:
            limit += f" (poll interval {r.sqlite_interval * 1000:.0f} ms + 50 ms)"
        print(f"  {verdict}  {r.feed} p99 {r.quantile(0.99) * 1000:.1f} ms < {limit}")


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--feeds", default=",".join(FEEDS), help="comma-separated subset")
    parser.add_argument("--count", type=int, help="revocations per feed (200; 20 with --quick)")
    parser.add_argument("--sqlite-interval", type=float, help="SQLite poll interval, s (0.1)")
    parser.add_argument("--check", choices=("notify", "spin"), default="notify")
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target FAILs")
    parser.add_argument(
        "--redis-url", default=os.environ.get("TOKENWARD_TEST_REDIS", "redis://127.0.0.1:6379/0")
    )
    parser.add_argument(
        "--postgres-dsn",
        default=os.environ.get(
            "TOKENWARD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    args = parser.parse_args(argv)
    if args.count is None:
        args.count = 20 if args.quick else 200
    if args.sqlite_interval is None:
        args.sqlite_interval = 0.05 if args.quick else 0.1
    args.feeds = [f for f in args.feeds.split(",") if f]
    unknown = set(args.feeds) - set(FEEDS)
    if unknown or args.count < 1 or not args.sqlite_interval > 0:
        parser.error(f"feeds are {', '.join(FEEDS)}; count >= 1; interval > 0")
    return args


async def run(args: argparse.Namespace) -> list[Result]:
    results = []
    with tempfile.TemporaryDirectory(prefix="tokenward-bench-") as tmp:
        locations = {
            "redis": args.redis_url,
            "postgres": args.postgres_dsn,
            "sqlite": str(Path(tmp) / "revocation.db"),
        }
        for feed in args.feeds:
            location = locations[feed]
            if feed != "sqlite" and not _reachable(location):
                print(f"{feed}: skipped, the server is not reachable")
                continue
            print(f"{feed}: {args.count} revocations ...", flush=True)
            try:
                results.append(await measure(feed, location, args.count, args))
            except StoreError as exc:
                print(f"{feed}: skipped, the store failed ({exc.code})")
    return results


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    print("Revocation delay: revoke_session() returned -> first refusal in another process")
    print(f"python {platform.python_version()} on {platform.platform()}; load {_load()}")
    print("clock: time.monotonic() in both processes (CLOCK_MONOTONIC, system-wide on Linux)")
    print(f"check: {args.check}; warm-up {WARMUP} revocations per feed, not counted")
    if not sys.platform.startswith("linux"):
        print("WARNING: not Linux; monotonic clocks of two processes may not be comparable")
    results = asyncio.run(run(args))
    if not results:
        print("nothing measured")
        return 2
    print_report(results)
    if args.json:
        report = [
            {
                **asdict(r),
                "p50": statistics.median(r.delays),
                "p90": r.quantile(0.9),
                "p99": r.quantile(0.99),
                "passed": r.passed,
            }
            for r in results
        ]
        args.json.write_text(json.dumps({"check": args.check, "results": report}, indent=2))
        print(f"\nwrote {args.json}")
    if args.strict and not all(r.passed for r in results):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
