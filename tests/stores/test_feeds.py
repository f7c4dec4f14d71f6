"""The revocation feed contract, run against every backend (memory, SQLite, Redis, PostgreSQL).

A feed yields the unexpired events after a given ``seq``: first the snapshot, then live
events, with no gap and no duplicate across the switch; a lost connection raises
:class:`StoreUnavailableError`. Redis and PostgreSQL outages are made with a loopback
proxy the test cuts (``tests/proxy.py``); a SQLite outage is a closed store.

Every wait here is for a real event (a message, a poll, a reconnection) and is bounded
by ``WAIT``, which is never reached when all is well.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from redis.asyncio import Redis

from tests.conftest import POSTGRES_DSN, REDIS_URL, require_service
from tests.proxy import CuttableProxy
from tests.stores.conftest import drop_backend, open_backend
from tests.stores.test_contract import ACCESS, T0, new_session, rotation
from tokenward.errors import ConfigurationError
from tokenward.service import DenyList, RevocationFollower
from tokenward.stores.base import (
    RevocationEvent,
    RevocationFeed,
    RevocationKind,
    RotateStatus,
    SessionStore,
    StoreError,
    StoreUnavailableError,
)
from tokenward.stores.memory import MemoryStore
from tokenward.stores.postgres import PostgresStore
from tokenward.stores.redis import RedisStore
from tokenward.stores.sqlite import SQLiteStore

WAIT = 10.0  # bound on waits for real events; never reached when all is well
POLL = 0.02  # the SQLite feed's poll interval in these tests
NOW = T0 + 1


def feed_of(store: SessionStore, *, heartbeat: float = 5.0) -> RevocationFeed:
    """The store's own feed (a fast-polling one for SQLite)."""
    if isinstance(store, MemoryStore):
        return store.revocation_feed()
    if isinstance(store, SQLiteStore):
        return store.revocation_feed(poll_interval=POLL)
    if isinstance(store, RedisStore | PostgresStore):
        return store.revocation_feed(heartbeat=heartbeat)
    raise AssertionError(f"no feed for {type(store).__name__}")


Feed = AsyncIterator[RevocationEvent | None]


async def next_event(events: Feed) -> RevocationEvent:
    """The next event, past the ready marker (``None``) if it comes first."""
    async with asyncio.timeout(WAIT):
        while (event := await anext(events)) is None:
            pass
        return event


async def take(events: Feed, count: int) -> list[RevocationEvent]:
    return [await next_event(events) for _ in range(count)]


async def revoke(store: SessionStore, sid: str, *, reason: str = "logout") -> None:
    """Create session ``sid`` (of user ``sub-<sid>``) and revoke it: one SESSION event."""
    await store.create_session(new_session(sid, f"sub-{sid}"))
    assert await store.revoke_session(sid, now=NOW, reason=reason, event_expires_at=NOW + ACCESS)


async def started(store: SessionStore, feed: RevocationFeed | None = None) -> Feed:
    """A feed past its snapshot (a seed event): what follows can only come live."""
    await revoke(store, "seed")
    events = (feed or feed_of(store)).events(0, now=NOW)
    assert (await next_event(events)).sid == "seed"
    return events


async def close(events: Feed) -> None:
    aclose = getattr(events, "aclose", None)
    if aclose is not None:
        await aclose()


# -- the contract, on every backend ------------------------------------------------------


async def test_snapshot_then_live_in_order(store: SessionStore) -> None:
    for sid in ("s1", "s2"):
        await revoke(store, sid)
    events = feed_of(store).events(0, now=NOW)
    try:
        snapshot = await take(events, 2)
        assert [e.sid for e in snapshot] == ["s1", "s2"]
        await revoke(store, "s3")
        await revoke(store, "s4")
        live = await take(events, 2)
        assert [e.sid for e in live] == ["s3", "s4"]
        seqs = [e.seq for e in snapshot + live]
        assert seqs == sorted(set(seqs))
        assert all(e.kind is RevocationKind.SESSION for e in snapshot + live)
    finally:
        await close(events)


async def test_the_ready_marker_comes_once_between_snapshot_and_live(store: SessionStore) -> None:
    for sid in ("s1", "s2"):
        await revoke(store, sid)
    events = feed_of(store).events(0, now=NOW)
    try:
        async with asyncio.timeout(WAIT):
            head = [await anext(events) for _ in range(3)]
        assert [e.sid if e is not None else None for e in head] == ["s1", "s2", None]
        await revoke(store, "s3")
        async with asyncio.timeout(WAIT):
            live = await anext(events)
        assert live is not None
        assert live.sid == "s3"
    finally:
        await close(events)


async def test_an_empty_snapshot_still_ends_with_the_marker(store: SessionStore) -> None:
    events = feed_of(store).events(0, now=NOW)
    try:
        async with asyncio.timeout(WAIT):
            assert await anext(events) is None
    finally:
        await close(events)


async def test_resuming_after_a_seq_yields_only_later_events(store: SessionStore) -> None:
    for sid in ("s1", "s2", "s3"):
        await revoke(store, sid)
    first = (await store.revocations_since(0, now=NOW))[0]
    events = feed_of(store).events(first.seq, now=NOW)
    try:
        assert [e.sid for e in await take(events, 2)] == ["s2", "s3"]
        await revoke(store, "s4")
        # The next event is the new one: s1 is not replayed, nothing is repeated.
        assert (await next_event(events)).sid == "s4"
    finally:
        await close(events)


async def test_expired_events_are_left_out_of_the_snapshot(store: SessionStore) -> None:
    await store.create_session(new_session("old"))
    await store.revoke_session("old", now=T0, reason="logout", event_expires_at=T0 + 5)
    events = feed_of(store).events(0, now=T0 + 10)
    try:
        await revoke(store, "s1")
        assert (await next_event(events)).sid == "s1"
    finally:
        await close(events)


async def test_every_kind_of_revocation_arrives_live(store: SessionStore) -> None:
    events = await started(store)
    try:
        await revoke(store, "s1", reason="admin")
        await store.create_session(new_session("b1", "bob"))
        await store.revoke_user("bob", now=NOW, reason="password_changed", event_expires_at=NOW + 9)
        await store.revoke_all(now=NOW + 1, reason="breach", event_expires_at=NOW + 10)
        await store.create_session(new_session("r1", "eve", at=NOW + 2))
        await store.rotate(rotation("r1", 0, now=NOW + 60))
        reused = await store.rotate(rotation("r1", 0, now=NOW + 200))
        assert reused.status is RotateStatus.REUSED
        got = [(e.kind, e.sid, e.sub, e.reason) for e in await take(events, 5)]
        assert got == [
            (RevocationKind.SESSION, "s1", "sub-s1", "admin"),
            # A user revocation: a SESSION event per revoked session, then the USER one.
            (RevocationKind.SESSION, "b1", "bob", "password_changed"),
            (RevocationKind.USER, None, "bob", "password_changed"),
            (RevocationKind.ALL, None, None, "breach"),
            (RevocationKind.SESSION, "r1", "eve", "reuse"),
        ]
    finally:
        await close(events)


async def test_live_events_carry_every_field(store: SessionStore) -> None:
    events = await started(store)
    try:
        await store.create_session(new_session("s1", "ada"))
        await store.revoke_session("s1", now=NOW + 0.25, reason="x", event_expires_at=NOW + 99.5)
        event = await next_event(events)
        stored = (await store.revocations_since(event.seq - 1, now=NOW))[0]
        assert event == stored
        assert (event.at, event.expires_at, event.sid, event.sub) == (
            NOW + 0.25,
            NOW + 99.5,
            "s1",
            "ada",
        )
    finally:
        await close(events)


async def test_an_event_too_large_for_a_notification_arrives_whole(store: SessionStore) -> None:
    # PostgreSQL sends only {"seq": n} for a payload over 7900 bytes; the feed reads it.
    events = await started(store)
    try:
        await revoke(store, "big", reason="r" * 9000)
        await revoke(store, "after")
        big, after = await take(events, 2)
        assert (big.sid, big.reason) == ("big", "r" * 9000)
        assert after.sid == "after"
    finally:
        await close(events)


async def test_events_recorded_while_the_feed_starts_arrive_exactly_once(
    store: SessionStore,
) -> None:
    # Revocations race the subscription and the snapshot: each must come exactly once,
    # in order, whether through the snapshot or live.
    sids = [f"s{i:02d}" for i in range(30)]
    for sid in sids:
        await store.create_session(new_session(sid, "ada"))

    async def revoke_all_of_them() -> None:
        for sid in sids:
            await store.revoke_session(sid, now=NOW, reason="r", event_expires_at=NOW + ACCESS)
            await asyncio.sleep(0)

    events = feed_of(store).events(0, now=NOW)
    writer = asyncio.create_task(revoke_all_of_them())
    try:
        got = await take(events, len(sids))
        await writer
        assert [e.sid for e in got] == sids
        seqs = [e.seq for e in got]
        assert seqs == sorted(set(seqs))
        await revoke(store, "last")
        assert (await next_event(events)).sid == "last"
    finally:
        writer.cancel()
        await close(events)


async def test_feeds_are_independent(store: SessionStore) -> None:
    one = await started(store)
    two = feed_of(store).events(0, now=NOW)
    try:
        assert (await next_event(two)).sid == "seed"
        await revoke(store, "s1")
        assert (await next_event(one)).sid == "s1"
        assert (await next_event(two)).sid == "s1"
    finally:
        await close(one)
        await close(two)


async def test_a_follower_keeps_a_deny_list_current(store: SessionStore) -> None:
    follower = RevocationFollower(feed_of(store), DenyList())
    await revoke(store, "before")
    async with follower.running():
        async with asyncio.timeout(WAIT):
            await follower.wait_until_connected()
        assert follower.deny.denies({"sid": "before"})
        await revoke(store, "after")
        seq = (await store.revocations_since(0, now=NOW))[-1].seq
        async with asyncio.timeout(WAIT):
            await follower.wait_until_applied(seq)
        assert follower.deny.denies({"sid": "after"})
        assert follower.events_applied == 2


# -- backend options ---------------------------------------------------------------------


@pytest.mark.parametrize("seconds", [0, -1, float("inf"), float("nan")], ids=repr)
async def test_feed_intervals_must_be_positive_and_finite(tmp_path: Path, seconds: float) -> None:
    store = await SQLiteStore.open(tmp_path / "t.db")
    try:
        with pytest.raises(ConfigurationError):
            store.revocation_feed(poll_interval=seconds)
    finally:
        await store.close()
    client = Redis()  # never connects: the feed checks its options first
    try:
        with pytest.raises(ConfigurationError):
            RedisStore(client).revocation_feed(heartbeat=seconds)
    finally:
        await client.aclose()


async def test_sqlite_feed_polls_once_per_interval(tmp_path: Path) -> None:
    store = await SQLiteStore.open(tmp_path / "t.db")
    interval = 0.05
    feed = store.revocation_feed(poll_interval=interval)
    loop = asyncio.get_running_loop()
    try:
        await revoke(store, "seed")
        events = feed.events(0, now=NOW)
        start = loop.time()
        await next_event(events)  # the first poll: the snapshot
        pending = asyncio.ensure_future(next_event(events))
        async with asyncio.timeout(WAIT):
            while feed.polls < 6:
                await asyncio.sleep(interval / 2)
        elapsed = loop.time() - start
        # Never more often than the interval, however the loop is scheduled.
        assert elapsed >= (feed.polls - 1) * interval * 0.95
        await revoke(store, "s1")
        assert (await pending).sid == "s1"
        await close(events)
    finally:
        await store.close()


# -- outages -----------------------------------------------------------------------------


def _through(url: str, port: int) -> str:
    parts = urlsplit(url)
    user, _, _ = parts.netloc.rpartition("@")
    host = f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=f"{user}@{host}" if user else host))


class StallingProxy(CuttableProxy):
    """A cuttable proxy that can also stop forwarding while keeping connections open:
    what a vanished host or a dropped route looks like to the client."""

    def __init__(self, target_host: str, target_port: int) -> None:
        super().__init__(target_host, target_port)
        self.flowing = asyncio.Event()
        self.flowing.set()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                await self.flowing.wait()
                writer.write(data)
                await writer.drain()
        writer.close()


class Outage:
    """A Redis or PostgreSQL store reached through a cuttable proxy, and a direct one."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.url = REDIS_URL if backend == "redis" else POSTGRES_DSN
        target = urlsplit(self.url)
        require_service(backend, target.hostname or "", target.port or 0)
        self.proxy = StallingProxy(target.hostname or "", target.port or 0)
        self.namespace = "t" + uuid.uuid4().hex[:12]

    async def open(self, url: str) -> RedisStore | PostgresStore:
        if self.backend == "redis":
            return await RedisStore.connect(url, prefix=self.namespace, timeout=2.0)
        return await PostgresStore.connect(url, schema=self.namespace, timeout=2.0)

    async def start(self) -> None:
        await self.proxy.start()
        self.direct = await self.open(self.url)
        self.proxied = await self.open(_through(self.url, self.proxy.port))

    async def stop(self) -> None:
        await self.proxied.close()
        await self.proxy.close()
        await drop_backend(self.direct)


@pytest.fixture(params=["redis", "postgres"])
async def outage(request: pytest.FixtureRequest) -> AsyncIterator[Outage]:
    outage = Outage(request.param)
    await outage.start()
    try:
        yield outage
    finally:
        await outage.stop()


async def test_a_cut_connection_raises_store_unavailable(outage: Outage) -> None:
    events = await started(outage.proxied)
    try:
        pending = asyncio.ensure_future(next_event(events))
        await asyncio.sleep(0)
        await outage.proxy.cut()
        with pytest.raises(StoreUnavailableError):
            await pending
    finally:
        await close(events)


async def test_a_feed_started_during_an_outage_raises_store_unavailable(outage: Outage) -> None:
    await outage.proxy.cut()
    events = outage.proxied.revocation_feed().events(0, now=NOW)
    try:
        with pytest.raises(StoreUnavailableError):
            await next_event(events)
    finally:
        await close(events)


async def test_a_follower_is_not_connected_while_its_connection_attempt_hangs(
    outage: Outage,
) -> None:
    # A dropped route: the proxy accepts, then forwards nothing. Each attempt hangs until
    # the store's timeout fails it; meanwhile the deny list learns nothing, so the follower
    # must not count as connected (the refuse policy would otherwise pass tokens).
    outage.proxy.flowing.clear()
    follower = RevocationFollower(
        outage.proxied.revocation_feed(), DenyList(), on_disconnect="refuse",
        backoff_initial=0.01, backoff_max=0.05,
    )  # fmt: skip
    async with follower.running():
        async with asyncio.timeout(WAIT):
            while follower.failed_attempts < 1:
                await asyncio.sleep(0.05)
        assert (follower.connected, follower.connects, follower.disconnects) == (False, 0, 0)
        assert follower.refuse_after == float("-inf")
        assert not follower.healthy()
        outage.proxy.flowing.set()
        async with asyncio.timeout(WAIT):
            await follower.wait_until_connected()
        assert follower.refuse_after == float("inf")


async def test_a_follower_catches_up_on_events_recorded_during_an_outage(outage: Outage) -> None:
    follower = RevocationFollower(
        outage.proxied.revocation_feed(), DenyList(), backoff_initial=0.01, backoff_max=0.05
    )
    await revoke(outage.direct, "before")
    async with follower.running():
        async with asyncio.timeout(WAIT):
            await follower.wait_until_connected()
        await outage.proxy.cut()
        async with asyncio.timeout(WAIT):
            await follower.wait_until_connected(False)
        await revoke(outage.direct, "during")
        assert not follower.deny.denies({"sid": "during"})
        await outage.proxy.restore()
        seq = (await outage.direct.revocations_since(0, now=NOW))[-1].seq
        async with asyncio.timeout(WAIT):
            await follower.wait_until_applied(seq)
        assert follower.deny.denies({"sid": "before"})
        assert follower.deny.denies({"sid": "during"})
        assert follower.events_applied == 2  # nothing applied twice
        assert follower.disconnects == 1


async def test_a_quiet_feed_outlives_many_heartbeats(outage: Outage) -> None:
    heartbeat = 0.05
    events = await started(outage.proxied, outage.proxied.revocation_feed(heartbeat=heartbeat))
    try:
        pending = asyncio.ensure_future(next_event(events))
        # Real time for a few heartbeats (PING or SELECT 1) to go back and forth.
        await asyncio.sleep(6 * heartbeat)
        assert not pending.done()
        await revoke(outage.direct, "s1")
        assert (await pending).sid == "s1"
    finally:
        await close(events)


async def test_a_silent_connection_is_given_up_after_the_heartbeat(outage: Outage) -> None:
    heartbeat = 0.1
    events = await started(outage.proxied, outage.proxied.revocation_feed(heartbeat=heartbeat))
    try:
        pending = asyncio.ensure_future(next_event(events))
        await asyncio.sleep(0)
        outage.proxy.flowing.clear()  # nothing gets through, and nothing is closed
        # Redis: a PING unanswered for a heartbeat; PostgreSQL: SELECT 1 past its timeout.
        with pytest.raises(StoreUnavailableError):
            await pending
    finally:
        await close(events)


@pytest.mark.parametrize("backend", ["redis", "postgres"])
async def test_a_malformed_message_on_the_channel_is_a_store_error(
    backend: str, tmp_path: Path
) -> None:
    store = await open_backend(backend, tmp_path)
    try:
        events = await started(store)
        pending = asyncio.ensure_future(next_event(events))
        await asyncio.sleep(0)
        # Something other than the store publishes on its channel.
        if isinstance(store, RedisStore):
            await store._redis.publish(store.channel, b'{"seq": "x"}')
        else:
            assert isinstance(store, PostgresStore)
            await store._call("execute", "SELECT pg_notify($1, 'not json')", store.channel)
        with pytest.raises(StoreError) as caught:
            await pending
        assert not isinstance(caught.value, StoreUnavailableError)
        await close(events)
    finally:
        await drop_backend(store)


async def test_a_closed_sqlite_store_makes_its_feed_raise_store_unavailable(
    tmp_path: Path,
) -> None:
    store = await SQLiteStore.open(tmp_path / "t.db")
    events = await started(store)
    pending = asyncio.ensure_future(next_event(events))
    await store.close()
    with pytest.raises(StoreUnavailableError):
        await pending
    await close(events)
