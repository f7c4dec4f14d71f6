"""PostgreSQL store behaviour beyond the contract suite, against the real server.

Migrations (idempotent, concurrent, all-or-nothing, forward from the previous version),
one round trip per operation counted on the wire, LISTEN/NOTIFY delivery, outages and
timeouts that leave nothing half-written, concurrent rotations across connections and
stores, batched purges, users and exactly counted concurrent login failures.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import struct
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information
import pytest

from tests.proxy import CuttableProxy
from tokenward.errors import ConfigurationError
from tokenward.stores._postgres_schema import MIGRATIONS, Migration, SchemaNames, migrate
from tokenward.stores.base import (
    KeyRecord,
    KeyState,
    NewSession,
    RevocationEvent,
    RevocationKind,
    RotateStatus,
    Rotation,
    StoreError,
    StoreUnavailableError,
    UserExistsError,
    UserRecord,
)
from tokenward.stores.postgres import PostgresStore, decode_notification

T0 = 1_800_000_000.0
IDLE = 3600.0
ABSOLUTE = 86400.0
GRACE = 10.0
ACCESS = 900.0

Opener = Callable[..., Awaitable[PostgresStore]]


def h(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


def new_session(sid: str = "s1", sub: str = "ada", *, at: float = T0) -> NewSession:
    return NewSession(
        sid=sid,
        sub=sub,
        created_at=at,
        idle_expires_at=at + IDLE,
        absolute_expires_at=at + ABSOLUTE,
        refresh_hash=h(f"{sid}-0"),
    )


def rotation(
    sid: str = "s1", generation: int = 0, *, now: float = T0 + 60, candidate: str = ""
) -> Rotation:
    successor = candidate or f"{sid}-{generation + 1}"
    return Rotation(
        sid=sid,
        generation=generation,
        presented_hash=h(f"{sid}-{generation}"),
        successor_hash=h(successor),
        successor_sealed=f"sealed-{successor}".encode(),
        now=now,
        idle_expires_at=now + IDLE,
        grace=GRACE,
        event_expires_at=now + ACCESS,
    )


def user(username: str = "ada", sub: str = "", **flags: bool) -> UserRecord:
    return UserRecord(
        sub=sub or f"u-{username}",
        username=username,
        password_hash="$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
        created_at=T0,
        updated_at=T0,
        scopes=("read", "write"),
        **flags,
    )


def unique_schema() -> str:
    return "t" + uuid.uuid4().hex[:12]


def via_proxy(dsn: str, port: int) -> str:
    """The DSN with host and port replaced by the proxy's, without TLS (to read the wire)."""
    parts = urlsplit(dsn)
    userinfo, _, _ = parts.netloc.rpartition("@")
    netloc = f"{userinfo}@127.0.0.1:{port}" if userinfo else f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=netloc, query="sslmode=disable"))


class FrontendMessages:
    """Counts the messages a client sends, by type byte (PostgreSQL protocol 3.0).

    Every round trip ends with a ``Sync`` (``S``, extended protocol) or is one ``Query``
    (``Q``, simple protocol): the client then waits for ``ReadyForQuery``.
    """

    _UNTYPED = (80877103, 80877104, 80877102)  # SSLRequest, GSSENCRequest, CancelRequest

    def __init__(self, counts: Counter[str]) -> None:
        self.counts = counts
        self._buffer = b""
        self._started = False

    def feed(self, data: bytes) -> None:
        self._buffer += data
        while True:
            if not self._started:
                if len(self._buffer) < 8:
                    return
                length, code = struct.unpack("!ii", self._buffer[:8])
                if len(self._buffer) < length:
                    return
                self._buffer = self._buffer[length:]
                self._started = code not in self._UNTYPED
                continue
            if len(self._buffer) < 5:
                return
            length = int.from_bytes(self._buffer[1:5], "big")
            if len(self._buffer) < 1 + length:
                return
            self.counts[chr(self._buffer[0])] += 1
            self._buffer = self._buffer[1 + length :]

    @staticmethod
    def round_trips(counts: Counter[str]) -> int:
        return counts["S"] + counts["Q"]


class _Tap:
    """A stream reader that shows what it reads to a :class:`FrontendMessages`."""

    def __init__(self, reader: asyncio.StreamReader, messages: FrontendMessages) -> None:
        self._reader = reader
        self._messages = messages

    async def read(self, n: int = -1) -> bytes:
        data = await self._reader.read(n)
        self._messages.feed(data)
        return data


class CountingProxy(CuttableProxy):
    """A :class:`CuttableProxy` that also counts client-to-server protocol messages."""

    def __init__(self, target_host: str, target_port: int) -> None:
        super().__init__(target_host, target_port)
        self.counts: Counter[str] = Counter()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tap = _Tap(reader, FrontendMessages(self.counts))
        await super()._handle(cast(asyncio.StreamReader, tap), writer)


@pytest.fixture
async def open_store(postgres_dsn: str) -> AsyncIterator[Opener]:
    """Open stores on fresh schemas (or a given one); drop and close them all afterwards."""
    opened: list[PostgresStore] = []
    schemas: set[str] = set()  # recorded before connecting: a failed connect may leave one

    async def opener(dsn: str = postgres_dsn, **options: Any) -> PostgresStore:
        schemas.add(options.setdefault("schema", unique_schema()))
        store = await PostgresStore.connect(dsn, **options)
        opened.append(store)
        return store

    yield opener
    for store in opened:
        await store.close()
    admin = await asyncpg.connect(postgres_dsn)
    try:
        for schema in schemas:
            await admin.execute(
                SchemaNames(schema).render("DROP SCHEMA IF EXISTS {schema} CASCADE")
            )
    finally:
        await admin.close()


@pytest.fixture
async def pg(postgres_dsn: str) -> AsyncIterator[Any]:
    """A direct connection, beside the store, to look at and lock rows."""
    connection = await asyncpg.connect(postgres_dsn)
    yield connection
    await connection.close()


@pytest.fixture
async def proxy(postgres_dsn: str) -> AsyncIterator[CountingProxy]:
    target = urlsplit(postgres_dsn)
    running = CountingProxy(target.hostname or "127.0.0.1", target.port or 5432)
    await running.start()
    yield running
    await running.close()


async def _wait_for(pg: Any, query: str, *args: object) -> Any:
    """Poll the server until ``query`` returns a non-NULL value (an event, not a delay)."""
    for _ in range(500):
        # Statistics views are a snapshot per transaction unless cleared.
        await pg.execute("SELECT pg_stat_clear_snapshot()")
        value = await pg.fetchval(query, *args)
        if value is not None:
            return value
        await asyncio.sleep(0.01)
    pytest.fail(f"server never reached the expected state: {query}")


async def _blocked_backend(pg: Any, schema: str, wait_event_type: str) -> int:
    """The pid of a backend of ``schema``'s store waiting on a lock of the given type."""
    pid = await _wait_for(
        pg,
        "SELECT pid FROM pg_stat_activity WHERE wait_event_type = $1"
        " AND query LIKE '%' || $2 || '%' AND pid <> pg_backend_pid() LIMIT 1",
        wait_event_type,
        schema,
    )
    return int(pid)


# Configuration -------------------------------------------------------------------


@pytest.mark.parametrize(
    "schema",
    ["", "1abc", "a-b", 'x"; DROP SCHEMA public; --', "pg_mine", "a" * 52, "sch\u00e9ma", "a b"],
    ids=[
        "empty",
        "digit-first",
        "dash",
        "injection",
        "pg-prefix",
        "too-long",
        "non-ascii",
        "space",
    ],
)
async def test_schema_name_must_be_a_plain_identifier(schema: str) -> None:
    with pytest.raises(ConfigurationError):
        await PostgresStore.connect("postgresql://nobody@127.0.0.1:1/none", schema=schema)


async def test_mixed_case_schema_is_quoted(open_store: Opener, pg: Any) -> None:
    schema = "Tw_" + uuid.uuid4().hex[:8]
    store = await open_store(schema=schema)
    await store.create_session(new_session())
    sql = SchemaNames(schema).render("SELECT count(*) FROM {schema}.sessions")
    assert await pg.fetchval(sql) == 1
    assert await pg.fetchval("SELECT to_regnamespace($1)", schema.lower()) is None


# Migrations ----------------------------------------------------------------------


async def _versions(pg: Any, schema: str) -> list[int]:
    sql = SchemaNames(schema).render("SELECT version FROM {schema}.schema_version ORDER BY 1")
    rows = await pg.fetch(sql)
    return [row["version"] for row in rows]


async def test_migrations_are_idempotent(open_store: Opener, pg: Any) -> None:
    first = await open_store()
    await first.create_session(new_session())
    second = await open_store(schema=first.schema)
    assert await _versions(pg, first.schema) == list(range(1, len(MIGRATIONS) + 1))
    record = await second.get_session("s1")
    assert record is not None
    assert record.sub == "ada"


async def test_concurrent_first_connections_migrate_once(open_store: Opener, pg: Any) -> None:
    schema = unique_schema()
    stores = await asyncio.gather(*(open_store(schema=schema) for _ in range(4)))
    assert await _versions(pg, schema) == list(range(1, len(MIGRATIONS) + 1))
    await stores[0].create_session(new_session())
    assert (await stores[3].rotate(rotation())).status is RotateStatus.ROTATED


async def test_a_failing_migration_leaves_the_previous_version(postgres_dsn: str, pg: Any) -> None:
    names = SchemaNames(unique_schema())
    broken = Migration("half done", "CREATE TABLE {schema}.half (x int); SELECT 1 / 0;")
    fixed = Migration("done", "CREATE TABLE {schema}.whole (x int);")
    try:
        with pytest.raises(asyncpg.exceptions.DivisionByZeroError):
            await migrate(pg, names, (*MIGRATIONS, broken))
        assert await _versions(pg, names.schema) == list(range(1, len(MIGRATIONS) + 1))
        assert await pg.fetchval("SELECT to_regclass($1)", f"{names.quoted}.half") is None
        assert await migrate(pg, names, (*MIGRATIONS, fixed)) == len(MIGRATIONS) + 1
        assert await pg.fetchval("SELECT to_regclass($1)", f"{names.quoted}.whole") is not None
        # Code that knows fewer migrations accepts a newer schema (rolling deploys).
        assert await migrate(pg, names) == len(MIGRATIONS) + 1
    finally:
        await pg.execute(names.render("DROP SCHEMA IF EXISTS {schema} CASCADE"))


async def test_previous_version_migrates_forward_with_sessions_intact(
    open_store: Opener, postgres_dsn: str, pg: Any
) -> None:
    names = SchemaNames(unique_schema())
    try:
        # A deployment of the previous release: version 1, used by that release's code.
        assert await migrate(pg, names, MIGRATIONS[:1]) == 1
        assert await pg.fetchval("SELECT to_regclass($1)", f"{names.quoted}.users") is None
        pool = await asyncpg.create_pool(postgres_dsn, min_size=1, max_size=2)
        old = PostgresStore(pool, names, timeout=5.0)
        try:
            await old.create_session(new_session("s1"))
            await old.create_session(new_session("s2", "bob"))
            assert (await old.rotate(rotation("s1"))).status is RotateStatus.ROTATED
            assert await old.revoke_session(
                "s2", now=T0 + 70, reason="x", event_expires_at=T0 + 999
            )
            await old.put_key(KeyRecord("k1", "ES256", KeyState.CURRENT, b"jwk", T0))
            before = [await old.get_session("s1"), await old.get_session("s2")]
        finally:
            await old.close()

        store = await open_store(schema=names.schema)
        assert await _versions(pg, names.schema) == list(range(1, len(MIGRATIONS) + 1))
        assert [await store.get_session("s1"), await store.get_session("s2")] == before
        # The rotated session keeps its previous hash, rotation time and sealed pair.
        replayed = await store.rotate(rotation("s1", now=T0 + 61))
        assert (replayed.status, replayed.sealed) == (RotateStatus.REPLAYED, b"sealed-s1-1")
        assert (await store.rotate(rotation("s1", 1, now=T0 + 62))).status is RotateStatus.ROTATED
        assert (await store.rotate(rotation("s2"))).status is RotateStatus.REVOKED
        [event] = await store.revocations_since(0, now=T0 + 100)
        assert (event.seq, event.sid, event.reason) == (1, "s2", "x")
        assert [key.kid for key in await store.list_keys()] == ["k1"]
        # The new tables work beside the old data.
        await store.create_user(user())
        assert await store.get_user("ada") == user()
        assert await store.record_failure("acct:ada", now=T0, window=60) == 1
    finally:
        await pg.execute(names.render("DROP SCHEMA IF EXISTS {schema} CASCADE"))


async def test_migration_3_makes_revoke_user_record_session_events(
    postgres_dsn: str, pg: Any
) -> None:
    names = SchemaNames(unique_schema())
    try:
        assert await migrate(pg, names, MIGRATIONS[:2]) == 2
        pool = await asyncpg.create_pool(postgres_dsn, min_size=1, max_size=1)
        store = PostgresStore(pool, names, timeout=5.0)
        try:
            for sid in ("a1", "a2", "a3"):
                await store.create_session(new_session(sid))
            # Version 2: the user event alone.
            assert await store.revoke_user("ada", now=T0 + 1, reason="x", event_expires_at=T0 + 9)
            [old] = await store.revocations_since(0, now=T0 + 1)
            assert (old.kind, old.sid) == (RevocationKind.USER, None)
            # Migrated under the running pool: its connection, which has run the old
            # function, runs the new one on its next call.
            assert await migrate(pg, names) == len(MIGRATIONS)
            await store.create_session(new_session("a4", at=T0 + 2))
            assert await store.revoke_user("ada", now=T0 + 3, reason="y", event_expires_at=T0 + 9)
            events = await store.revocations_since(old.seq, now=T0 + 3)
            assert [(e.kind, e.sid, e.sub, e.reason) for e in events] == [
                (RevocationKind.SESSION, "a4", "ada", "y"),
                (RevocationKind.USER, None, "ada", "y"),
            ]
            # revoke_all is unchanged: one event.
            await store.create_session(new_session("b1", "bob", at=T0 + 4))
            assert await store.revoke_all(now=T0 + 5, reason="z", event_expires_at=T0 + 9) == 1
            [everyone] = await store.revocations_since(events[-1].seq, now=T0 + 5)
            assert (everyone.kind, everyone.sid, everyone.sub) == (RevocationKind.ALL, None, None)
        finally:
            await store.close()
    finally:
        await pg.execute(names.render("DROP SCHEMA IF EXISTS {schema} CASCADE"))


async def test_drop_removes_the_schema(open_store: Opener, pg: Any) -> None:
    store = await open_store()
    await store.drop()
    assert await pg.fetchval("SELECT to_regnamespace($1)", store.schema) is None


# Round trips ---------------------------------------------------------------------


async def test_rotate_is_one_round_trip_on_the_wire(
    open_store: Opener, proxy: CountingProxy, postgres_dsn: str
) -> None:
    store = await open_store(via_proxy(postgres_dsn, proxy.port), min_size=1, max_size=1)
    await store.create_session(new_session())
    proxy.counts.clear()
    before = store.operations
    # The very first rotation on the connection: the statement was prepared at connect.
    assert (await store.rotate(rotation())).status is RotateStatus.ROTATED
    assert FrontendMessages.round_trips(proxy.counts) == 1
    assert proxy.counts["P"] == 0  # no Parse: the prepared statement was reused
    assert store.operations == before + 1
    # Replay, reuse (with its revocation event and NOTIFY) are one round trip as well.
    for attempt, status in [
        (rotation(now=T0 + 61), RotateStatus.REPLAYED),
        (rotation(now=T0 + 61 + GRACE), RotateStatus.REUSED),
    ]:
        proxy.counts.clear()
        assert (await store.rotate(attempt)).status is status
        assert FrontendMessages.round_trips(proxy.counts) == 1


async def test_every_operation_is_one_round_trip_once_prepared(
    open_store: Opener, proxy: CountingProxy, postgres_dsn: str
) -> None:
    store = await open_store(via_proxy(postgres_dsn, proxy.port), min_size=1, max_size=1)
    calls: dict[str, Callable[[int], Awaitable[object]]] = {
        "create_session": lambda i: store.create_session(new_session(f"x{i}")),
        "get_session": lambda i: store.get_session(f"x{i}"),
        "list_sessions": lambda i: store.list_sessions("ada", T0),
        "revoke_session": lambda i: store.revoke_session(
            f"x{i}", now=T0, reason="logout", event_expires_at=T0 + ACCESS
        ),
        "revoke_user": lambda i: store.revoke_user(
            "ada", now=T0, reason="password", event_expires_at=T0 + ACCESS
        ),
        "revoke_all": lambda i: store.revoke_all(now=T0, reason="x", event_expires_at=T0 + 1),
        "revocations_since": lambda i: store.revocations_since(0, now=T0),
        "purge_expired": lambda i: store.purge_expired(now=T0, batch=10),
        "list_keys": lambda i: store.list_keys(),
        "delete_key": lambda i: store.delete_key("k"),
    }
    for name, call in calls.items():
        await call(0)  # prepares the statement on the only connection
        proxy.counts.clear()
        before = store.operations
        await call(1)
        assert (name, FrontendMessages.round_trips(proxy.counts)) == (name, 1)
        assert store.operations == before + 1


async def test_every_user_operation_is_one_round_trip_once_prepared(
    open_store: Opener, proxy: CountingProxy, postgres_dsn: str
) -> None:
    store = await open_store(via_proxy(postgres_dsn, proxy.port), min_size=1, max_size=1)
    calls: dict[str, Callable[[int], Awaitable[object]]] = {
        "create_user": lambda i: store.create_user(user(f"user{i}")),
        "get_user": lambda i: store.get_user(f"user{i}"),
        "list_users": lambda i: store.list_users(),
        "update_user": lambda i: store.update_user(user(f"renamed{i}", f"u-user{i}")),
        "record_failure": lambda i: store.record_failure("acct:ada", now=T0 + i, window=60),
        "failures": lambda i: store.failures("acct:ada", now=T0 + i),
        "clear_failures": lambda i: store.clear_failures("acct:ada"),
    }
    for name, call in calls.items():
        await call(0)  # prepares the statement on the only connection
        proxy.counts.clear()
        before = store.operations
        await call(1)
        assert (name, FrontendMessages.round_trips(proxy.counts)) == (name, 1)
        assert store.operations == before + 1
    # A refused write is one round trip too (the error ends the statement).
    proxy.counts.clear()
    with pytest.raises(UserExistsError):
        await store.update_user(user("renamed1", "u-user0"))
    assert FrontendMessages.round_trips(proxy.counts) == 1


# Revocation feed -----------------------------------------------------------------


async def test_revocations_are_notified_at_commit(open_store: Opener, postgres_dsn: str) -> None:
    store = await open_store()
    for sid, sub in [("s1", "ada"), ("s2", "ada"), ("s3", "bob")]:
        await store.create_session(new_session(sid, sub))
    received: asyncio.Queue[str] = asyncio.Queue()
    listener = await asyncpg.connect(postgres_dsn)
    try:
        await listener.add_listener(store.channel, lambda *args: received.put_nowait(args[3]))
        await store.rotate(rotation())
        assert (await store.rotate(rotation(now=T0 + 60 + GRACE))).status is RotateStatus.REUSED
        assert not await store.revoke_session(
            "s1", now=T0 + 80, reason="logout", event_expires_at=T0 + 980
        )  # already revoked: no event, no notification
        assert await store.revoke_session(
            "s2", now=T0 + 90.123456789, reason="logout", event_expires_at=T0 + 990.1
        )
        await store.revoke_user("bob", now=T0 + 95, reason="password", event_expires_at=T0 + 995)
        await store.revoke_all(now=T0 + 99, reason="breach", event_expires_at=T0 + 999)
        payloads = [await asyncio.wait_for(received.get(), 5) for _ in range(5)]
    finally:
        await listener.close()
    notified = [decode_notification(payload) for payload in payloads]
    stored = await store.revocations_since(0, now=T0 + 100)
    assert notified == list(stored)
    assert [(e.kind, e.sid, e.sub, e.reason) for e in stored] == [
        (RevocationKind.SESSION, "s1", "ada", "reuse"),
        (RevocationKind.SESSION, "s2", "ada", "logout"),
        (RevocationKind.SESSION, "s3", "bob", "password"),
        (RevocationKind.USER, None, "bob", "password"),
        (RevocationKind.ALL, None, None, "breach"),
    ]
    assert received.empty()


async def test_oversized_event_is_notified_by_seq(open_store: Opener, postgres_dsn: str) -> None:
    store = await open_store()
    await store.create_session(new_session())
    received: asyncio.Queue[str] = asyncio.Queue()
    listener = await asyncpg.connect(postgres_dsn)
    try:
        await listener.add_listener(store.channel, lambda *args: received.put_nowait(args[3]))
        reason = "r" * 9000  # beyond the 8000-byte NOTIFY payload limit
        await store.revoke_session("s1", now=T0, reason=reason, event_expires_at=T0 + ACCESS)
        notified = decode_notification(await asyncio.wait_for(received.get(), 5))
    finally:
        await listener.close()
    assert isinstance(notified, int)
    [event] = await store.revocations_since(notified - 1, now=T0)
    assert (event.seq, event.reason) == (notified, reason)


async def test_events_commit_in_seq_order(open_store: Opener, pg: Any) -> None:
    store = await open_store()
    await store.create_session(new_session("s1"))
    await store.create_session(new_session("s2"))
    names = SchemaNames(store.schema)
    async with pg.transaction():
        first = await pg.fetchval(
            names.render("SELECT {schema}.tokenward_revoke_session('s1', $1, 'x', $2)"),
            T0,
            T0 + ACCESS,
        )
        assert first
        later = asyncio.ensure_future(
            store.revoke_session("s2", now=T0, reason="y", event_expires_at=T0 + ACCESS)
        )
        # The second writer waits for the first to commit before taking a seq, so no
        # reader can see seq 2 while seq 1 is still invisible.
        await _blocked_backend(pg, store.schema, "Lock")
        assert not later.done()
    assert await later
    events = await store.revocations_since(0, now=T0)
    assert [(e.seq, e.sid) for e in events] == [(1, "s1"), (2, "s2")]


# Outages and timeouts ------------------------------------------------------------


async def test_cut_connection_raises_unavailable_and_old_token_still_rotates(
    open_store: Opener, proxy: CountingProxy, postgres_dsn: str
) -> None:
    store = await open_store(via_proxy(postgres_dsn, proxy.port), timeout=2.0)
    await store.create_session(new_session())
    await proxy.cut()
    with pytest.raises(StoreUnavailableError) as caught:
        await store.rotate(rotation())
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__
    with pytest.raises(StoreUnavailableError):
        await store.revoke_session("s1", now=T0 + 61, reason="x", event_expires_at=T0 + 99)
    await proxy.restore()
    record = await store.get_session("s1")
    assert record is not None
    assert (record.generation, record.revoked_at) == (0, None)
    result = await store.rotate(rotation(now=T0 + 62))
    assert result.status is RotateStatus.ROTATED
    assert result.sealed == b"sealed-s1-1"


async def test_cut_during_rotation_is_all_or_nothing(
    open_store: Opener, proxy: CountingProxy, postgres_dsn: str, pg: Any
) -> None:
    store = await open_store(via_proxy(postgres_dsn, proxy.port), timeout=5.0)
    await store.create_session(new_session())
    names = SchemaNames(store.schema)
    lock = pg.transaction()
    await lock.start()
    await pg.execute(names.render("SELECT 1 FROM {schema}.sessions WHERE sid = 's1' FOR UPDATE"))
    in_flight = asyncio.ensure_future(store.rotate(rotation(candidate="in-flight")))
    orphan = await _blocked_backend(pg, store.schema, "Lock")
    await proxy.cut()
    with pytest.raises(StoreUnavailableError):
        await in_flight
    await lock.rollback()
    # The orphaned server process finishes its statement on its own; wait until it exits.
    await _wait_for(
        pg, "SELECT true WHERE NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)", orphan
    )
    await proxy.restore()
    result = await store.rotate(rotation(now=T0 + 61))
    record = await store.get_session("s1")
    assert record is not None
    assert (record.generation, record.revoked_at) == (1, None)
    if result.status is RotateStatus.REPLAYED:
        # The orphan committed its whole rotation; the old token still gets its pair.
        assert result.sealed == b"sealed-in-flight"
    else:
        assert result.status is RotateStatus.ROTATED


async def test_timeout_raises_unavailable_and_changes_nothing(open_store: Opener, pg: Any) -> None:
    store = await open_store(timeout=0.3)
    await store.create_session(new_session())
    names = SchemaNames(store.schema)
    async with pg.transaction():
        await pg.execute(
            names.render("SELECT 1 FROM {schema}.sessions WHERE sid = 's1' FOR UPDATE")
        )
        with pytest.raises(StoreUnavailableError):
            await store.rotate(rotation())
    record = await store.get_session("s1")
    assert record is not None
    assert record.generation == 0
    assert (await store.rotate(rotation(now=T0 + 61))).status is RotateStatus.ROTATED


async def test_unreachable_server_is_unavailable_without_secrets() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dsn = f"postgresql://postgres:hunter2@127.0.0.1:{port}/test"
    with pytest.raises(StoreUnavailableError) as caught:
        await PostgresStore.connect(dsn, schema=unique_schema(), timeout=1.0)
    assert "hunter2" not in str(caught.value)
    assert str(port) not in str(caught.value)


async def test_cut_connection_fails_user_operations_without_writing(
    open_store: Opener, proxy: CountingProxy, postgres_dsn: str
) -> None:
    store = await open_store(via_proxy(postgres_dsn, proxy.port), timeout=2.0)
    assert await store.record_failure("acct:ada", now=T0, window=60) == 1
    await proxy.cut()
    with pytest.raises(StoreUnavailableError):
        await store.record_failure("acct:ada", now=T0 + 1, window=60)
    with pytest.raises(StoreUnavailableError):
        await store.create_user(user())
    await proxy.restore()
    assert await store.failures("acct:ada", now=T0 + 2) == (1, T0 + 60)
    assert await store.list_users() == []


async def test_closed_store_is_unavailable(open_store: Opener) -> None:
    store = await open_store()
    await store.close()
    with pytest.raises(StoreUnavailableError):
        await store.get_session("s1")


# Concurrency ---------------------------------------------------------------------


def _assert_one_winner(results: list[tuple[RotateStatus, bytes | None]]) -> None:
    statuses = Counter(status for status, _ in results)
    assert statuses == {RotateStatus.ROTATED: 1, RotateStatus.REPLAYED: 49}
    assert len({sealed for _, sealed in results}) == 1


async def _attempt(store: PostgresStore, i: int) -> tuple[RotateStatus, bytes | None]:
    result = await store.rotate(rotation(candidate=f"cand-{i}"))
    return result.status, result.sealed


async def test_fifty_rotations_over_a_pool_have_one_winner(open_store: Opener) -> None:
    store = await open_store(min_size=1, max_size=25)
    await store.create_session(new_session())
    _assert_one_winner(await asyncio.gather(*(_attempt(store, i) for i in range(50))))
    assert store._pool.get_size() >= 10  # the attempts really ran on many connections
    record = await store.get_session("s1")
    assert record is not None
    assert (record.generation, record.revoked_at) == (1, None)


async def test_fifty_rotations_from_ten_stores_have_one_winner(open_store: Opener) -> None:
    first = await open_store(max_size=5)
    stores = [first] + [await open_store(schema=first.schema, max_size=5) for _ in range(9)]
    await first.create_session(new_session())
    _assert_one_winner(await asyncio.gather(*(_attempt(stores[i % 10], i) for i in range(50))))
    record = await stores[7].get_session("s1")
    assert record is not None
    assert (record.generation, record.revoked_at) == (1, None)


async def test_concurrent_failures_from_many_connections_count_exactly(
    open_store: Opener,
) -> None:
    first = await open_store(max_size=20)
    stores = [first] + [await open_store(schema=first.schema, max_size=10) for _ in range(4)]

    async def fail(i: int, now: float) -> int:
        return await stores[i % 5].record_failure("ip:10.0.0.1", now=now, window=60)

    # The key does not exist yet: concurrent first inserts meet in ON CONFLICT.
    counts = await asyncio.gather(*(fail(i, T0) for i in range(100)))
    assert sorted(counts) == list(range(1, 101))
    assert first._pool.get_size() >= 10  # the calls really ran on many connections
    assert await first.failures("ip:10.0.0.1", now=T0 + 30) == (100, T0 + 60)
    # When the window has ended, exactly one of the concurrent failures restarts it.
    counts = await asyncio.gather(*(fail(i, T0 + 60) for i in range(100)))
    assert sorted(counts) == list(range(1, 101))
    assert await first.failures("ip:10.0.0.1", now=T0 + 70) == (100, T0 + 120)


async def test_concurrent_creates_of_one_username_have_one_winner(open_store: Opener) -> None:
    store = await open_store(max_size=20)

    async def create(i: int) -> bool:
        try:
            await store.create_user(user("ada", f"u-{i}"))
        except UserExistsError:
            return False
        return True

    assert sorted(await asyncio.gather(*(create(i) for i in range(30)))) == [False] * 29 + [True]
    assert [u.username for u in await store.list_users()] == ["ada"]


async def test_usernames_are_exact_and_listed_in_code_point_order(open_store: Opener) -> None:
    store = await open_store()
    names = ["b", "B", "a", "\u00e9", "Z", "a b", "A"]
    for name in names:
        await store.create_user(user(name))
    assert [u.username for u in await store.list_users()] == sorted(names)
    assert await store.get_user("\u00c9") is None
    record = await store.get_user("a")
    assert record is not None
    assert record.sub == "u-a"


async def test_only_user_conflicts_are_user_exists(open_store: Opener) -> None:
    store = await open_store()
    await store.create_session(new_session())
    with pytest.raises(StoreError) as caught:
        await store.create_session(new_session())
    assert not isinstance(caught.value, UserExistsError)
    await store.create_user(user("ada", admin=True))
    with pytest.raises(UserExistsError) as refused:
        await store.create_user(user("eve", "u-ada"))
    assert "ada" not in str(refused.value)


# Purge ---------------------------------------------------------------------------


async def test_purge_deletes_in_batches(open_store: Opener) -> None:
    store = await open_store()
    for i in range(25):
        await store.create_session(new_session(f"old{i}", at=T0 - ABSOLUTE - i))
    for i in range(4):
        await store.create_session(new_session(f"rev{i}"))
        await store.revoke_session(f"rev{i}", now=T0 - 10, reason="x", event_expires_at=T0)
    await store.create_session(new_session("live"))
    counts = [await store.purge_expired(now=T0, batch=10) for _ in range(4)]
    assert counts == [14, 10, 5, 0]  # ten sessions and the four events, then sessions
    assert await store.get_session("live") is not None
    assert await store.get_session("rev0") is not None  # revoked, not yet expired


async def test_purge_skips_rows_locked_by_others(open_store: Opener, pg: Any) -> None:
    store = await open_store()
    for i in range(3):
        await store.create_session(new_session(f"old{i}", at=T0 - ABSOLUTE))
    names = SchemaNames(store.schema)
    async with pg.transaction():
        await pg.execute(
            names.render("SELECT 1 FROM {schema}.sessions WHERE sid = 'old1' FOR UPDATE")
        )
        # Does not wait for the lock (the store's timeout would turn a wait into an error).
        assert await store.purge_expired(now=T0, batch=10) == 2
    assert await store.get_session("old1") is not None
    assert await store.purge_expired(now=T0, batch=10) == 1


async def test_keys_keep_extra_members(open_store: Opener) -> None:
    store = await open_store()
    extra = {"use": "sig", "nested": {"n": [1, 2]}}
    await store.put_key(KeyRecord("k1", "ES256", KeyState.CURRENT, b"\x00jwk", T0, extra=extra))
    [key] = await store.list_keys()
    assert (key.material, key.extra) == (b"\x00jwk", extra)


def test_decode_notification_round_trips_an_event() -> None:
    payload = json.dumps(
        {
            "seq": 7,
            "kind": "user",
            "sid": None,
            "sub": "ada",
            "at": T0,
            "expires_at": T0 + 1,
            "reason": "password",
        }
    )
    assert decode_notification(payload) == RevocationEvent(
        7, RevocationKind.USER, T0, T0 + 1, sub="ada", reason="password"
    )
