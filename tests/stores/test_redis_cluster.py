"""The Redis store on a real Redis Cluster (three primaries, ``tests/rediscluster.py``).

The contract suites run on the cluster through the ``redis-cluster`` backend; these
tests cover what only a cluster shows: where keys land, that a rotation is still one
script in one slot, that user-wide operations reach sessions on every node, what is
published and recorded on reuse, and what a node outage leaves behind. Outages are made
with one cuttable loopback proxy per node (the client reaches each node through its
proxy via ``address_remap``); the cluster itself is never disturbed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.crc import key_slot

from tests.proxy import CuttableProxy
from tests.rediscluster import LocalCluster
from tests.stores.test_contract import ACCESS, GRACE, IDLE, T0, h, new_session, rotation
from tests.stores.test_feeds import close, next_event
from tests.stores.test_redis import fifty_rotations_from_fifty_connections, unique_prefix
from tokenward.errors import ConfigurationError
from tokenward.service import DenyList, RevocationFollower
from tokenward.stores import open_store
from tokenward.stores._redis_cluster import RedisClusterStore, parse_cluster_url
from tokenward.stores.base import (
    RevocationKind,
    RotateStatus,
    StoreError,
    StoreUnavailableError,
)
from tokenward.stores.redis import RedisStore

WAIT = 10.0  # bound on waits for real events; never reached when all is well


# -- fixtures and helpers ----------------------------------------------------------------


@pytest.fixture
async def nodes(redis_cluster: LocalCluster) -> AsyncIterator[dict[int, Redis]]:
    """A plain client of each node, by port, for looking behind the store."""
    clients = {port: Redis(host="127.0.0.1", port=port) for port in redis_cluster.ports}
    try:
        yield clients
    finally:
        for client in clients.values():
            await client.aclose()


@pytest.fixture
async def cstore(redis_cluster: LocalCluster) -> AsyncIterator[RedisClusterStore]:
    store = await RedisStore.connect(redis_cluster.url, prefix=unique_prefix())
    assert isinstance(store, RedisClusterStore)
    try:
        yield store
    finally:
        await store.drop()
        await store.close()


async def keys_of(nodes: dict[int, Redis], prefix: str) -> dict[str, int]:
    """Every key under ``prefix:`` on the cluster, with the port of the node holding it."""
    found: dict[str, int] = {}
    for port, client in nodes.items():
        async for key in client.scan_iter(match=f"{prefix}:*"):
            found[key.decode()] = port
    return found


def sids_on(cluster: LocalCluster, port: int, count: int = 1, *, off: bool = False) -> list[str]:
    """``count`` sids whose session key lives on node ``port`` (or, ``off``, elsewhere)."""
    sids = (f"s{i}" for i in range(10_000))
    return [sid for sid in sids if (cluster.owner(sid) == port) != off][:count]


async def command_calls(nodes: dict[int, Redis]) -> dict[int, Counter[str]]:
    """Commands each node has run so far, by name (``INFO`` itself left out)."""
    counts: dict[int, Counter[str]] = {}
    for port, client in nodes.items():
        stats = await client.info("commandstats")
        counts[port] = Counter(
            {
                name.removeprefix("cmdstat_"): int(value["calls"])
                for name, value in stats.items()
                if name != "cmdstat_info"
            }
        )
    return counts


def ran(before: dict[int, Counter[str]], after: dict[int, Counter[str]]) -> dict[int, Counter[str]]:
    """The commands run between two :func:`command_calls`, on nodes that ran any."""
    delta = {port: after[port] - before[port] for port in after}
    return {port: counts for port, counts in delta.items() if counts}


class Records(logging.Handler):
    """Keeps every record it is given."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def store_log() -> Iterator[list[logging.LogRecord]]:
    """Records of the ``tokenward.stores`` logger, whatever the logging configuration."""
    handler = Records()
    logger = logging.getLogger("tokenward.stores")
    logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)


async def messages(pubsub: Any, count: int) -> list[dict[str, Any]]:
    """The next ``count`` messages on a subscribed connection, decoded."""
    received: list[dict[str, Any]] = []
    async with asyncio.timeout(WAIT):
        while len(received) < count:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is not None:
                received.append(json.loads(message["data"]))
    return received


# -- layout and round trips --------------------------------------------------------------


async def test_each_script_touches_one_slot(
    cstore: RedisClusterStore, nodes: dict[int, Redis], redis_cluster: LocalCluster
) -> None:
    await cstore.create_session(new_session("s1", "ada"))
    await cstore.rotate(rotation("s1", 0, now=T0 + 60))
    await cstore.rotate(rotation("s1", 0, now=T0 + 60 + GRACE))  # reuse: an event
    p = cstore.prefix
    found = await keys_of(nodes, p)
    assert set(found) == {
        f"{p}:s:{{s1}}",
        f"{p}:u:{{ada}}",
        f"{p}:all",
        f"{p}:{{rev}}:events",
        f"{p}:{{rev}}:seq",
        f"{p}:{{rev}}:exp",
        f"{p}:{{rev}}:done:s:s1",
    }
    # A session lives in its sid's slot; the event log and its markers share one slot.
    assert key_slot(f"{p}:s:{{s1}}".encode()) == key_slot(b"s1")
    log = {key for key in found if "{rev}" in key}
    assert {key_slot(key.encode()) for key in log} == {key_slot(b"rev")}
    assert {found[key] for key in log} == {redis_cluster.owner("rev")}
    # The marker lives as long as the event (plus slack), then expires on its own.
    ttl = await nodes[found[f"{p}:{{rev}}:done:s:s1"]].pttl(f"{p}:{{rev}}:done:s:s1")
    assert ACCESS * 1000 < ttl <= ACCESS * 1000 + 60_000


async def test_rotation_is_one_script_on_the_sessions_node(
    cstore: RedisClusterStore, nodes: dict[int, Redis], redis_cluster: LocalCluster
) -> None:
    await cstore.create_session(new_session("s1"))
    home = redis_cluster.owner("s1")
    for presented in (rotation("s1", 0, now=T0 + 60), rotation("s1", 0, now=T0 + 61)):
        before_ops, before = cstore.operations, await command_calls(nodes)
        result = await cstore.rotate(presented)
        assert result.sealed == b"sealed-s1-1"  # rotated, then replayed within grace
        assert cstore.operations - before_ops == 1
        # One EVALSHA on the session's node, nothing anywhere else. (Redis counts the
        # commands a script calls too: those are the script's own reads and writes.)
        delta = ran(before, await command_calls(nodes))
        assert set(delta) == {home}
        assert delta[home]["evalsha"] == 1
        assert set(delta[home]) <= {"evalsha", "hmget", "hset", "pexpire"}


async def test_fifty_rotations_from_fifty_connections_have_one_winner(
    redis_cluster: LocalCluster,
) -> None:
    await fifty_rotations_from_fifty_connections(redis_cluster.url)


async def test_a_users_sessions_on_every_node_are_listed_revoked_and_purged(
    cstore: RedisClusterStore, nodes: dict[int, Redis], redis_cluster: LocalCluster
) -> None:
    sids = [sid for port in redis_cluster.ports for sid in sids_on(redis_cluster, port, 2)]
    for i, sid in enumerate(sids):
        await cstore.create_session(new_session(sid, "ada", at=T0 + i))
    await cstore.create_session(new_session("bob1", "bob"))
    assert len({redis_cluster.owner(sid) for sid in sids}) == 3
    assert [s.sid for s in await cstore.list_sessions("ada", T0 + 10)] == sids
    assert await cstore.revoke_user("ada", now=T0 + 20, reason="pw", event_expires_at=T0 + 99)
    events = await cstore.revocations_since(0, now=T0 + 21)
    assert [(e.kind, e.sid) for e in events] == [
        *[(RevocationKind.SESSION, sid) for sid in sids],
        (RevocationKind.USER, None),
    ]
    assert await cstore.list_sessions("ada", T0 + 21) == []
    assert [s.sid for s in await cstore.list_sessions("bob", T0 + 21)] == ["bob1"]
    assert await cstore.revoke_all(now=T0 + 30, reason="breach", event_expires_at=T0 + 99) == 1
    assert await cstore.list_sessions("bob", T0 + 31) == []
    # Long after: every session, every index entry and every event goes, in batches.
    purged = []
    while count := await cstore.purge_expired(now=T0 + 10 * 86400, batch=4):
        purged.append(count)
    assert sum(purged) == len(sids) + 1 + len(events) + 1
    p = cstore.prefix
    # Only the event log's counter and its markers (until their TTLs) are left.
    assert {key for key in await keys_of(nodes, p) if "{rev}" not in key} == set()


async def test_revoke_user_skips_an_index_entry_that_names_another_users_session(
    cstore: RedisClusterStore, nodes: dict[int, Redis], redis_cluster: LocalCluster
) -> None:
    # What a refused duplicate create can leave behind if its clean-up fails.
    await cstore.create_session(new_session("b1", "bob"))
    ada = cstore.user_key("ada")
    await nodes[redis_cluster.owner(ada)].zadd(ada, {"b1": T0})
    assert await cstore.list_sessions("ada", T0 + 1) == []
    assert await cstore.revoke_user("ada", now=T0 + 1, reason="x", event_expires_at=T0 + 9) == 0
    bob = await cstore.get_session("b1")
    assert bob is not None
    assert bob.revoked_at is None


async def test_a_refused_duplicate_create_takes_back_its_index_entries(
    cstore: RedisClusterStore, nodes: dict[int, Redis], redis_cluster: LocalCluster
) -> None:
    await cstore.create_session(new_session("s1", "bob"))
    with pytest.raises(StoreError):
        await cstore.create_session(new_session("s1", "ada"))
    ada = cstore.user_key("ada")
    assert await nodes[redis_cluster.owner(ada)].zcard(ada) == 0
    every = f"{cstore.prefix}:all"
    assert await nodes[redis_cluster.owner(every)].zrange(every, 0, -1) == [b'["s1","bob"]']


async def test_scripts_flushed_on_every_node_are_reloaded(
    cstore: RedisClusterStore, nodes: dict[int, Redis], redis_cluster: LocalCluster
) -> None:
    sids = [sids_on(redis_cluster, port)[0] for port in redis_cluster.ports]
    for sid in sids:
        await cstore.create_session(new_session(sid, "ada"))
    for client in nodes.values():
        await client.script_flush()
    before = cstore.operations
    assert (await cstore.rotate(rotation(sids[0], 0))).status is RotateStatus.ROTATED
    assert cstore.operations - before == 1
    for client in nodes.values():
        await client.script_flush()
    # A pipelined fan-out meets NOSCRIPT on every node: load once, run those again.
    assert await cstore.revoke_user("ada", now=T0 + 70, reason="x", event_expires_at=T0 + 99) == 3


# -- reuse: published at once, recorded once ---------------------------------------------


async def test_reuse_is_published_by_the_script_then_recorded_once(
    cstore: RedisClusterStore, redis_cluster: LocalCluster
) -> None:
    # Subscribed on a node that holds neither the session nor the event log: classic
    # PUBLISH reaches every node.
    log = redis_cluster.owner("rev")
    (sid,) = sids_on(redis_cluster, log, off=True)
    other = next(p for p in redis_cluster.ports if p not in (log, redis_cluster.owner(sid)))
    await cstore.create_session(new_session(sid, "ada"))
    await cstore.rotate(rotation(sid, 0, now=T0 + 60))
    listener = Redis(host="127.0.0.1", port=other)
    pubsub = listener.pubsub()
    await pubsub.subscribe(cstore.channel)
    try:
        before = cstore.operations
        assert (await cstore.rotate(rotation(sid, 0, now=T0 + 90))).status is RotateStatus.REUSED
        assert cstore.operations - before == 2  # the rotate script, then the recording
        published = await messages(pubsub, 2)
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]  # untyped in redis-py
        await listener.aclose()
    (event,) = await cstore.revocations_since(0, now=T0 + 91)
    assert (event.kind, event.sid, event.sub, event.reason) == (
        RevocationKind.SESSION,
        sid,
        "ada",
        "reuse",
    )
    # Two deliveries: the notice (seq 0) from the rotate script, and the recorded event.
    assert sorted(m["seq"] for m in published) == [0, event.seq]
    for message in published:
        assert {**message, "seq": event.seq} == {
            "seq": event.seq,
            "kind": "session",
            "at": T0 + 90,
            "expires_at": T0 + 90 + ACCESS,
            "sid": sid,
            "sub": "ada",
            "reason": "reuse",
        }


async def test_a_feed_on_another_connection_yields_the_reuse(
    cstore: RedisClusterStore, redis_cluster: LocalCluster
) -> None:
    watcher = await RedisStore.connect(redis_cluster.url, prefix=cstore.prefix)
    await cstore.create_session(new_session("seed", "eve"))
    await cstore.revoke_session("seed", now=T0, reason="logout", event_expires_at=T0 + ACCESS)
    events = watcher.revocation_feed().events(0, now=T0)
    try:
        async with asyncio.timeout(WAIT):
            seed = await anext(events)
            assert seed is not None
            assert seed.sid == "seed"
            assert await anext(events) is None  # The ready marker.
        await cstore.create_session(new_session("s1", "ada"))
        await cstore.rotate(rotation("s1", 0, now=T0 + 60))
        await cstore.rotate(rotation("s1", 0, now=T0 + 90))
        async with asyncio.timeout(WAIT):
            got = [await next_event(events), await next_event(events)]
        recorded = (await cstore.revocations_since(1, now=T0 + 91))[0]
        # The notice and the recorded event, in whichever order they arrived.
        assert sorted(e.seq for e in got) == [0, recorded.seq]
        assert {(e.kind, e.sid, e.reason) for e in got} == {(RevocationKind.SESSION, "s1", "reuse")}
        deny = DenyList()
        deny.apply_all(got)
        assert deny.denies({"sid": "s1"})
        assert deny.last_seq == recorded.seq
    finally:
        await close(events)
        await watcher.close()


# -- URLs --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "nodes", "username", "password", "tls"),
    [
        pytest.param("redis+cluster://h1:7000", (("h1", 7000),), None, None, False, id="one"),
        pytest.param(
            "redis+cluster://10.0.0.1:7000,10.0.0.2:7001/",
            (("10.0.0.1", 7000), ("10.0.0.2", 7001)),
            None,
            None,
            False,
            id="two",
        ),
        pytest.param(
            "rediss+cluster://app:p%40ss@[::1]:7000,cache/0",
            (("::1", 7000), ("cache", 6379)),
            "app",
            "p@ss",
            True,
            id="tls-ipv6-default-port-credentials",
        ),
        pytest.param(
            "redis+cluster://:secret@h1:7000", (("h1", 7000),), None, "secret", False, id="pw"
        ),
    ],
)
def test_cluster_urls(
    url: str,
    nodes: tuple[tuple[str, int], ...],
    username: str | None,
    password: str | None,
    tls: bool,
) -> None:
    parsed = parse_cluster_url(url)
    assert (parsed.nodes, parsed.username, parsed.password, parsed.tls) == (
        nodes,
        username,
        password,
        tls,
    )
    assert "secret" not in repr(parsed)


@pytest.mark.parametrize(
    "url",
    [
        "redis://:secret@h1:7000/0",
        "redis+cluster:h1:7000",
        "redis+cluster://",
        "redis+cluster://:secret@h1:7000,,h2:7001",
        "redis+cluster://:secret@h1:port",
        "redis+cluster://:secret@h1:0",
        "redis+cluster://:secret@h1:65536",
        "redis+cluster://:secret@h1:\u00b2",  # isdigit(), but not an int() digit
        "redis+cluster://:secret@h1:\u0663\u0663",  # Arabic-Indic digits: port 33 to int()
        "redis+cluster://:secret@h1:7000/1",
        "redis+cluster://:secret@h1:7000/?ssl_cert_reqs=none",
        "redis+cluster://:secret@[::1:7000",
        "redis+cluster://:secret@[::1]7000",
    ],
    ids=repr,
)
async def test_invalid_cluster_urls_are_refused_without_the_password(url: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        await RedisClusterStore.connect(url)
    assert "secret" not in str(caught.value)


async def test_open_store_takes_a_cluster_url(redis_cluster: LocalCluster) -> None:
    store = await open_store(redis_cluster.url)
    try:
        assert isinstance(store, RedisClusterStore)
        await store.create_session(new_session("s1"))
        assert (await store.rotate(rotation("s1", 0))).status is RotateStatus.ROTATED
    finally:
        assert isinstance(store, RedisClusterStore)
        await store.drop()
        await store.close()


async def test_a_single_server_is_not_a_cluster(redis_url: str) -> None:
    with pytest.raises(StoreUnavailableError):
        await RedisStore.connect("redis+cluster://127.0.0.1:6379", prefix=unique_prefix())


# -- outages, through one proxy per node -------------------------------------------------


class NodeProxy(CuttableProxy):
    """A cuttable proxy in front of one node that can also lose replies on the way back
    (the command ran; the client never hears of it, and times out)."""

    def __init__(self, target_host: str, target_port: int) -> None:
        super().__init__(target_host, target_port)
        self.lose_replies = 0
        self._to_client: set[asyncio.StreamWriter] = set()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._to_client.add(writer)
        await super()._handle(reader, writer)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if writer not in self._to_client:
            return await super()._pipe(reader, writer)
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                if self.lose_replies:
                    self.lose_replies -= 1
                    continue
                writer.write(data)
                await writer.drain()
        writer.close()
        return None


class Proxied:
    """A store that reaches every node of the cluster through its own :class:`NodeProxy`."""

    def __init__(self, cluster: LocalCluster, prefix: str) -> None:
        self.cluster = cluster
        self.prefix = prefix
        self.proxies = {port: NodeProxy("127.0.0.1", port) for port in cluster.ports}

    async def start(self) -> RedisClusterStore:
        for proxy in self.proxies.values():
            await proxy.start()

        def remap(address: tuple[str, int]) -> tuple[str, int]:
            proxy = self.proxies.get(address[1])
            return address if proxy is None else ("127.0.0.1", proxy.port)

        first = next(iter(self.proxies.values()))
        self.store = await RedisClusterStore.connect(
            f"redis+cluster://127.0.0.1:{first.port}",
            prefix=self.prefix,
            # Short enough that a lost reply times out quickly, long enough that a loaded
            # machine does not time out a command that was answered.
            timeout=2.0,
            address_remap=remap,
        )
        return self.store

    def of(self, key: str) -> NodeProxy:
        """The proxy in front of the node serving ``key``."""
        return self.proxies[self.cluster.owner(key)]

    async def close(self) -> None:
        await self.store.close()
        for proxy in self.proxies.values():
            await proxy.close()


@pytest.fixture
async def proxied(redis_cluster: LocalCluster, cstore: RedisClusterStore) -> AsyncIterator[Proxied]:
    """``proxied.store`` goes through the proxies; ``cstore`` (same prefix) does not."""
    proxied = Proxied(redis_cluster, cstore.prefix)
    await proxied.start()
    try:
        yield proxied
    finally:
        await proxied.close()


async def test_outage_of_every_node_changes_nothing_and_the_old_token_still_rotates(
    proxied: Proxied, cstore: RedisClusterStore
) -> None:
    store = proxied.store
    await store.create_session(new_session("s1"))
    for proxy in proxied.proxies.values():
        await proxy.cut()
    with pytest.raises(StoreUnavailableError) as caught:
        await store.rotate(rotation("s1", 0))
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__
    with pytest.raises(StoreUnavailableError):
        await store.revoke_session("s1", now=T0, reason="x", event_expires_at=T0 + 1)
    with pytest.raises(StoreUnavailableError):
        await store.create_session(new_session("s2"))
    with pytest.raises(StoreUnavailableError):
        await store.revoke_user("ada", now=T0, reason="x", event_expires_at=T0 + 1)
    untouched = await cstore.get_session("s1")
    assert untouched is not None
    assert (untouched.generation, untouched.revoked_at) == (0, None)
    assert await cstore.get_session("s2") is None
    assert await cstore.revocations_since(0, now=T0) == []
    for proxy in proxied.proxies.values():
        await proxy.restore()
    result = await store.rotate(rotation("s1", 0))
    assert result.status is RotateStatus.ROTATED
    assert result.session is not None
    assert result.session.generation == 1


async def test_outage_of_one_node_stops_only_its_sessions(
    proxied: Proxied, cstore: RedisClusterStore, redis_cluster: LocalCluster
) -> None:
    store = proxied.store
    down = redis_cluster.ports[0]
    (here,) = sids_on(redis_cluster, down)
    (there,) = sids_on(redis_cluster, down, off=True)
    for sid in (here, there):
        await store.create_session(new_session(sid))
    await proxied.proxies[down].cut()
    with pytest.raises(StoreUnavailableError):
        await store.rotate(rotation(here, 0))
    with pytest.raises(StoreUnavailableError):
        await store.get_session(here)
    # The rest of the cluster goes on.
    assert (await store.rotate(rotation(there, 0))).status is RotateStatus.ROTATED
    untouched = await cstore.get_session(here)
    assert untouched is not None
    assert untouched.generation == 0
    await proxied.proxies[down].restore()
    assert (await store.rotate(rotation(here, 0))).status is RotateStatus.ROTATED


async def test_create_while_the_sessions_node_is_down_leaves_nothing_reachable(
    proxied: Proxied,
    cstore: RedisClusterStore,
    nodes: dict[int, Redis],
    redis_cluster: LocalCluster,
) -> None:
    (sid,) = [
        s
        for s in sids_on(redis_cluster, redis_cluster.owner(cstore.user_key("ada")), 50, off=True)
        if redis_cluster.owner(s) != redis_cluster.owner(f"{cstore.prefix}:all")
    ][:1]
    await proxied.of(sid).cut()
    with pytest.raises(StoreUnavailableError):
        await proxied.store.create_session(new_session(sid, "ada"))
    await proxied.of(sid).restore()
    # The indexes were written first; the session never was. Nothing lists or counts it,
    # and purge removes the entries once the session would have expired.
    assert await cstore.get_session(sid) is None
    assert await cstore.list_sessions("ada", T0 + 1) == []
    assert await cstore.revoke_user("ada", now=T0 + 1, reason="x", event_expires_at=T0 + 9) == 0
    assert await cstore.purge_expired(now=T0 + 1, batch=10) == 0
    # The stray entries (one session's) and revoke_user's USER event.
    assert await cstore.purge_expired(now=T0 + IDLE, batch=10) == 1 + 1
    p = cstore.prefix
    assert {key for key in await keys_of(nodes, p) if "{rev}" not in key} == set()


async def test_revoke_user_with_a_node_down_revokes_the_rest_and_can_be_completed(
    proxied: Proxied, cstore: RedisClusterStore, redis_cluster: LocalCluster
) -> None:
    log = redis_cluster.owner("rev")
    index = redis_cluster.owner(cstore.user_key("ada"))
    down = next(p for p in redis_cluster.ports if p not in (log, index))
    (lost,) = sids_on(redis_cluster, down)
    (kept,) = sids_on(redis_cluster, down, off=True)
    await cstore.create_session(new_session(kept, "ada", at=T0))
    await cstore.create_session(new_session(lost, "ada", at=T0 + 1))
    await proxied.proxies[down].cut()
    with pytest.raises(StoreUnavailableError):
        await proxied.store.revoke_user("ada", now=T0 + 5, reason="pw", event_expires_at=T0 + 99)
    assert [s.sid for s in await cstore.list_sessions("ada", T0 + 6)] == [lost]
    await proxied.proxies[down].restore()
    assert (
        await proxied.store.revoke_user("ada", now=T0 + 7, reason="pw", event_expires_at=T0 + 99)
        == 1
    )
    events = await cstore.revocations_since(0, now=T0 + 8)
    assert [(e.kind, e.sid, e.at) for e in events] == [
        (RevocationKind.SESSION, kept, T0 + 5),
        (RevocationKind.USER, None, T0 + 5),
        (RevocationKind.SESSION, lost, T0 + 7),
        (RevocationKind.USER, None, T0 + 7),
    ]


async def test_reuse_while_the_event_log_is_down_still_revokes_and_notifies(
    proxied: Proxied, cstore: RedisClusterStore, redis_cluster: LocalCluster
) -> None:
    log = redis_cluster.owner("rev")
    s1, s2 = sids_on(redis_cluster, log, 2, off=True)
    listener = Redis(host="127.0.0.1", port=redis_cluster.owner(s1))
    pubsub = listener.pubsub()
    await pubsub.subscribe(cstore.channel)
    store = proxied.store
    try:
        for sid in (s1, s2):
            await store.create_session(new_session(sid, "ada"))
        await store.rotate(rotation(s1, 0, now=T0 + 60))
        await proxied.proxies[log].cut()
        with store_log() as records:
            reused = await store.rotate(rotation(s1, 0, now=T0 + 90))
            assert await store.revoke_session(
                s2, now=T0 + 91, reason="logout", event_expires_at=T0 + 991
            )
        # Both revocations stand, and live verifiers heard of both.
        assert reused.status is RotateStatus.REUSED
        published = await messages(pubsub, 2)
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]  # untyped in redis-py
        await listener.aclose()
    for sid, reason in ((s1, "reuse"), (s2, "logout")):
        record = await cstore.get_session(sid)
        assert record is not None
        assert record.revoked_reason == reason
    assert [(m["seq"], m["sid"], m["reason"]) for m in published] == [
        (0, s1, "reuse"),
        (0, s2, "logout"),
    ]
    # The loss is logged, with identifiers and no token material; the log stays empty.
    assert [(r.levelname, r.getMessage()) for r in records] == [
        ("ERROR", "revocation_event_not_recorded")
    ] * 2
    assert [(r.__dict__["sids"], r.__dict__["sub"]) for r in records] == [
        ([s1], "ada"),
        ([s2], "ada"),
    ]
    text = repr([r.__dict__ for r in records])
    for secret in (h(f"{s1}-0"), h(f"{s1}-1"), b"sealed"):
        assert secret.hex() not in text
        assert repr(secret)[2:-1] not in text
    await proxied.proxies[log].restore()
    assert await cstore.revocations_since(0, now=T0 + 92) == []


async def test_a_lost_reply_is_retried_and_recorded_once(
    proxied: Proxied, cstore: RedisClusterStore, redis_cluster: LocalCluster
) -> None:
    log = redis_cluster.owner("rev")
    (sid,) = sids_on(redis_cluster, log, off=True)
    store = proxied.store
    await store.create_session(new_session(sid, "ada"))
    await store.rotate(rotation(sid, 0, now=T0 + 60))
    proxied.proxies[log].lose_replies = 1  # the first recording runs; its reply is lost
    with store_log() as records:
        before = store.operations
        assert (await store.rotate(rotation(sid, 0, now=T0 + 90))).status is RotateStatus.REUSED
    assert store.operations - before == 3  # rotate, the recording, its retry
    assert records == []
    assert [(e.kind, e.sid) for e in await cstore.revocations_since(0, now=T0 + 91)] == [
        (RevocationKind.SESSION, sid)
    ]


async def test_a_follower_catches_up_after_the_event_logs_node_was_down(
    proxied: Proxied, cstore: RedisClusterStore, redis_cluster: LocalCluster
) -> None:
    log = proxied.proxies[redis_cluster.owner("rev")]
    follower = RevocationFollower(
        proxied.store.revocation_feed(), DenyList(), backoff_initial=0.01, backoff_max=0.05
    )
    await cstore.create_session(new_session("before"))
    await cstore.revoke_session("before", now=T0, reason="x", event_expires_at=T0 + ACCESS)
    async with follower.running():
        async with asyncio.timeout(WAIT):
            await follower.wait_until_connected()
        await log.cut()
        async with asyncio.timeout(WAIT):
            await follower.wait_until_connected(False)
        await cstore.create_session(new_session("during"))
        await cstore.revoke_session("during", now=T0, reason="x", event_expires_at=T0 + ACCESS)
        assert not follower.deny.denies({"sid": "during"})
        await log.restore()
        seq = (await cstore.revocations_since(0, now=T0))[-1].seq
        async with asyncio.timeout(WAIT):
            await follower.wait_until_applied(seq)
        assert follower.deny.denies({"sid": "before"})
        assert follower.deny.denies({"sid": "during"})
        assert follower.events_applied == 2
