"""Redis-specific behaviour, against the real server: layout, TTLs, outages, scripts, pub/sub.

The contract suite (test_contract.py) covers the semantics; these tests cover what only a
Redis deployment shows: where data lives, when it is collected, what one round trip
buys, and what happens when the server goes away.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.crc import key_slot

from tests.proxy import CuttableProxy
from tests.stores.test_contract import ABSOLUTE, ACCESS, GRACE, IDLE, T0, h, new_session, rotation
from tests.stores.test_users_contract import user
from tokenward.errors import ConfigurationError
from tokenward.stores.base import (
    KeyRecord,
    KeyState,
    RevocationKind,
    RotateStatus,
    Rotation,
    StoreUnavailableError,
    UserExistsError,
)
from tokenward.stores.redis import RedisStore

SLACK_MS = 60_000  # the store's TTL slack beyond a session's expiry


def unique_prefix() -> str:
    return "t" + uuid.uuid4().hex[:12]


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def rstore(redis_url: str) -> AsyncIterator[RedisStore]:
    store = await RedisStore.connect(redis_url, prefix=unique_prefix())
    try:
        yield store
    finally:
        await store.drop()
        await store.close()


async def keys_of(raw: Redis, prefix: str) -> set[str]:
    return {key.decode() async for key in raw.scan_iter(match=f"{prefix}:*")}


async def test_key_layout_tags_each_session_and_user(rstore: RedisStore, raw: Redis) -> None:
    await rstore.create_session(new_session("s1", "ada"))
    await rstore.rotate(rotation("s1", 0, now=T0 + 60))
    await rstore.rotate(rotation("s1", 0, now=T0 + 60 + GRACE))  # reuse: an event
    p = rstore.prefix
    assert await keys_of(raw, p) == {
        f"{p}:s:{{s1}}",
        f"{p}:u:{{ada}}",
        f"{p}:all",
        f"{p}:revocations",
        f"{p}:revseq",
        f"{p}:revexp",
    }
    # Redis Cluster hashes only the tag: a session's key lives in the slot of its sid.
    assert key_slot(rstore.session_key("s1").encode()) == key_slot(b"s1")
    assert key_slot(rstore.user_key("ada").encode()) == key_slot(b"ada")
    stored = await raw.hgetall(f"{p}:s:{{s1}}")
    assert stored[b"current_hash"] == h("s1-1")
    assert stored[b"previous_hash"] == h("s1-0")
    assert stored[b"sealed"] == b"sealed-s1-1"
    assert stored[b"revoked_reason"] == b"reuse"
    assert await raw.zrange(f"{p}:u:{{ada}}", 0, -1) == [b"s1"]


async def test_ttls_follow_expiry_and_survive_revocation(rstore: RedisStore, raw: Redis) -> None:
    key = rstore.session_key("s1")
    await rstore.create_session(new_session("s1"))
    # Relative to the caller's own times: created at T0, idle expiry T0 + IDLE.
    assert IDLE * 1000 < await raw.pttl(key) <= IDLE * 1000 + SLACK_MS

    slid = Rotation(
        sid="s1",
        generation=0,
        presented_hash=h("s1-0"),
        successor_hash=h("s1-1"),
        successor_sealed=b"pair-1",
        now=T0 + 60,
        idle_expires_at=T0 + 60 + 20 * IDLE,
        grace=GRACE,
        event_expires_at=T0 + 60 + ACCESS,
    )
    assert (await rstore.rotate(slid)).status is RotateStatus.ROTATED
    assert 20 * IDLE * 1000 - 5000 < await raw.pttl(key) <= 20 * IDLE * 1000 + SLACK_MS

    # An idle expiry past the absolute one: the TTL stops at the absolute expiry.
    capped = Rotation(
        sid="s1",
        generation=1,
        presented_hash=h("s1-1"),
        successor_hash=h("s1-2"),
        successor_sealed=b"pair-2",
        now=T0 + ABSOLUTE - 16_400,
        idle_expires_at=T0 + ABSOLUTE + IDLE,
        grace=GRACE,
        event_expires_at=T0 + ABSOLUTE + ACCESS,
    )
    assert (await rstore.rotate(capped)).status is RotateStatus.ROTATED
    assert 16_395_000 < await raw.pttl(key) <= 16_400_000 + SLACK_MS

    before = await raw.pttl(key)
    assert await rstore.revoke_session(
        "s1", now=T0 + ABSOLUTE - 50, reason="logout", event_expires_at=T0 + ABSOLUTE
    )
    # Revocation keeps the key until the session would have expired, so reuse of its
    # tokens is still recognised as REVOKED rather than UNKNOWN.
    assert 0 < await raw.pttl(key) <= before


@pytest.mark.parametrize(
    ("name", "call"),
    [
        pytest.param("create", lambda s: s.create_session(new_session("s2")), id="create"),
        pytest.param("rotate", lambda s: s.rotate(rotation("s1", 0)), id="rotate"),
        pytest.param("get", lambda s: s.get_session("s1"), id="get"),
        pytest.param("list", lambda s: s.list_sessions("ada", T0), id="list"),
        pytest.param(
            "revoke_session",
            lambda s: s.revoke_session("s1", now=T0, reason="x", event_expires_at=T0 + 1),
            id="revoke-session",
        ),
        pytest.param(
            "revoke_user",
            lambda s: s.revoke_user("ada", now=T0, reason="x", event_expires_at=T0 + 1),
            id="revoke-user",
        ),
        pytest.param(
            "revoke_all",
            lambda s: s.revoke_all(now=T0, reason="x", event_expires_at=T0 + 1),
            id="revoke-all",
        ),
        pytest.param("since", lambda s: s.revocations_since(0, now=T0), id="since"),
        pytest.param("purge", lambda s: s.purge_expired(now=T0, batch=10), id="purge"),
        pytest.param(
            "put_key",
            lambda s: s.put_key(KeyRecord("k", "ES256", KeyState.NEXT, b"m", T0)),
            id="put-key",
        ),
        pytest.param("list_keys", lambda s: s.list_keys(), id="list-keys"),
        pytest.param("delete_key", lambda s: s.delete_key("k"), id="delete-key"),
        pytest.param(
            "create_user", lambda s: s.create_user(user("bob", "u-bob")), id="create-user"
        ),
        pytest.param("get_user", lambda s: s.get_user("ada"), id="get-user"),
        pytest.param("list_users", lambda s: s.list_users(), id="list-users"),
        pytest.param(
            "update_user", lambda s: s.update_user(user("ada2", disabled=True)), id="update-user"
        ),
        pytest.param(
            "update_user_refused",
            lambda s: _refused(s.update_user(user("ada", "u-bob"))),
            id="update-user-refused",
        ),
        pytest.param(
            "record_failure",
            lambda s: s.record_failure("acct:ada", now=T0, window=60),
            id="record-failure",
        ),
        pytest.param("failures", lambda s: s.failures("acct:ada", now=T0), id="failures"),
        pytest.param("clear_failures", lambda s: s.clear_failures("acct:ada"), id="clear-failures"),
    ],
)
async def test_each_operation_is_one_round_trip(
    rstore: RedisStore, name: str, call: Callable[[RedisStore], Awaitable[Any]]
) -> None:
    await rstore.create_session(new_session("s1"))
    await rstore.create_user(user())
    if name.startswith("update_user"):
        await rstore.create_user(user("bob", "u-bob"))
    await rstore.record_failure("acct:ada", now=T0, window=60)
    before = rstore.operations
    await call(rstore)
    assert rstore.operations - before == 1, name


async def test_rotate_reloads_script_after_script_flush(rstore: RedisStore, raw: Redis) -> None:
    await rstore.create_session(new_session("s1"))
    await raw.script_flush()
    before = rstore.operations
    result = await rstore.rotate(rotation("s1", 0))
    assert result.status is RotateStatus.ROTATED
    assert result.sealed == b"sealed-s1-1"
    assert rstore.operations - before == 1  # one logical call, however NOSCRIPT resolved
    # The reloaded script serves every later call too, reuse detection included.
    await raw.script_flush()
    reused = await rstore.rotate(rotation("s1", 0, now=T0 + 60 + GRACE))
    assert reused.status is RotateStatus.REUSED


async def fifty_rotations_from_fifty_connections(url: str) -> None:
    """50 stores (each its own connections) present one refresh token at once: exactly
    one rotation, 49 replays of the same successor, one round trip each, no revocation."""
    prefix = unique_prefix()
    stores = [await RedisStore.connect(url, prefix=prefix) for _ in range(50)]
    try:
        await stores[0].create_session(new_session("s1"))
        before = [s.operations for s in stores]

        async def attempt(i: int) -> tuple[RotateStatus, bytes | None]:
            result = await stores[i].rotate(
                Rotation(
                    sid="s1",
                    generation=0,
                    presented_hash=h("s1-0"),
                    successor_hash=h(f"cand-{i}"),
                    successor_sealed=f"cand-{i}".encode(),
                    now=T0 + 60,
                    idle_expires_at=T0 + 60 + IDLE,
                    grace=GRACE,
                    event_expires_at=T0 + 60 + ACCESS,
                )
            )
            return result.status, result.sealed

        results = await asyncio.gather(*(attempt(i) for i in range(50)))
        statuses = [status for status, _ in results]
        assert statuses.count(RotateStatus.ROTATED) == 1
        assert statuses.count(RotateStatus.REPLAYED) == 49
        assert len({sealed for _, sealed in results}) == 1
        assert [s.operations - b for s, b in zip(stores, before, strict=True)] == [1] * 50
        record = await stores[0].get_session("s1")
        assert record is not None
        assert (record.generation, record.revoked_at) == (1, None)
        assert await stores[0].revocations_since(0, now=T0 + 61) == []
    finally:
        await stores[0].drop()
        await asyncio.gather(*(s.close() for s in stores))


async def test_fifty_rotations_from_fifty_connections_have_one_winner(redis_url: str) -> None:
    await fifty_rotations_from_fifty_connections(redis_url)


async def _refused(call: Awaitable[Any]) -> None:
    with pytest.raises(UserExistsError):
        await call


async def test_user_and_failure_layout(rstore: RedisStore, raw: Redis) -> None:
    at = T0 + 0.123456789  # not representable in 14 digits: must come back exact
    await rstore.create_user(user(created_at=at, updated_at=at))
    assert await rstore.record_failure("ip:127.0.0.1", now=at, window=60.5) == 1
    p = rstore.prefix
    digest = hashlib.sha256(b"ip:127.0.0.1").hexdigest()
    assert rstore.failure_key("ip:127.0.0.1") == f"{p}:fail:{{{digest}}}"
    assert await keys_of(raw, p) == {
        f"{p}:{{users}}",
        f"{p}:{{users}}:subs",
        f"{p}:fail:{{{digest}}}",
    }
    # Both user hashes share one tag, so create/update stay single-slot on a cluster.
    assert key_slot(f"{p}:{{users}}".encode()) == key_slot(f"{p}:{{users}}:subs".encode())
    assert await raw.hget(f"{p}:{{users}}:subs", "u-ada") == b"ada"
    got = await rstore.get_user("ada")
    assert got is not None
    assert (got.created_at, got.updated_at) == (at, at)
    # The window ends when the caller says, exactly; the TTL only collects the key after it.
    assert await rstore.failures("ip:127.0.0.1", now=at) == (1, at + 60.5)
    assert 60_000 < await raw.pttl(rstore.failure_key("ip:127.0.0.1")) <= 60_500 + SLACK_MS
    # A continuing window keeps its TTL; a new one (past the end, per the caller) resets it.
    await raw.pexpire(rstore.failure_key("ip:127.0.0.1"), 5_000)
    assert await rstore.record_failure("ip:127.0.0.1", now=at + 1, window=60.5) == 2
    assert await raw.pttl(rstore.failure_key("ip:127.0.0.1")) <= 5_000
    assert await rstore.record_failure("ip:127.0.0.1", now=at + 60.5, window=10) == 1
    assert 5_000 < await raw.pttl(rstore.failure_key("ip:127.0.0.1")) <= 10_000 + SLACK_MS
    await rstore.clear_failures("ip:127.0.0.1")
    assert await keys_of(raw, p) == {f"{p}:{{users}}", f"{p}:{{users}}:subs"}


@pytest.mark.parametrize(
    "key", ["acct:{ada}", "acct:*", "ip:::1", "acct:" + "x" * 10_000, "acct:\ud800"], ids=repr
)
async def test_hostile_throttle_keys_stay_apart(rstore: RedisStore, raw: Redis, key: str) -> None:
    assert await rstore.record_failure(key, now=T0, window=60) == 1
    assert await rstore.failures("acct:ada", now=T0) == (0, T0)
    assert await rstore.failures(key, now=T0) == (1, T0 + 60)
    assert len(rstore.failure_key(key)) == len(rstore.failure_key("acct:ada"))
    await rstore.drop()
    assert await keys_of(raw, rstore.prefix) == set()


async def test_fifty_failures_from_fifty_connections_count_exactly(redis_url: str) -> None:
    prefix = unique_prefix()
    stores = [await RedisStore.connect(redis_url, prefix=prefix) for _ in range(50)]
    try:
        before = [s.operations for s in stores]
        counts = await asyncio.gather(
            *(
                s.record_failure("ip:10.0.0.1", now=T0 + i / 100, window=60)
                for i, s in enumerate(stores)
            )
        )
        assert sorted(counts) == list(range(1, 51))
        assert [s.operations - b for s, b in zip(stores, before, strict=True)] == [1] * 50
        # One window, started by whichever failure Redis ran first.
        count, ends = await stores[0].failures("ip:10.0.0.1", now=T0 + 1)
        assert count == 50
        assert ends in {T0 + i / 100 + 60 for i in range(50)}
    finally:
        await stores[0].drop()
        await asyncio.gather(*(s.close() for s in stores))


async def test_concurrent_renames_onto_one_name_have_one_winner(redis_url: str) -> None:
    prefix = unique_prefix()
    stores = [await RedisStore.connect(redis_url, prefix=prefix) for _ in range(20)]
    try:
        for i in range(20):
            await stores[0].create_user(user(f"user{i:02}", f"u-{i}"))

        async def rename(i: int) -> bool:
            try:
                return await stores[i].update_user(user("taken", f"u-{i}", updated_at=T0 + 1))
            except UserExistsError:
                return False

        won = await asyncio.gather(*(rename(i) for i in range(20)))
        assert won.count(True) == 1
        winner = won.index(True)
        listed = await stores[0].list_users()
        assert len(listed) == 20
        assert [u.username for u in listed] == sorted(
            ["taken"] + [f"user{i:02}" for i in range(20) if i != winner]
        )
        taken = await stores[0].get_user("taken")
        assert taken is not None
        assert taken.sub == f"u-{winner}"
        # The sub index followed the rename: the old name is free for a new user.
        await stores[0].create_user(user(f"user{winner:02}", "u-new"))
        with pytest.raises(UserExistsError):
            await stores[0].create_user(user("fresh", f"u-{winner}"))
    finally:
        await stores[0].drop()
        await asyncio.gather(*(s.close() for s in stores))


@pytest.fixture
async def proxy(redis_url: str) -> AsyncIterator[CuttableProxy]:
    cuttable = CuttableProxy("127.0.0.1", 6379)
    await cuttable.start()
    try:
        yield cuttable
    finally:
        await cuttable.close()


async def test_outage_mid_run_changes_nothing_and_old_token_still_rotates(
    proxy: CuttableProxy, rstore: RedisStore
) -> None:
    store = await RedisStore.connect(
        f"redis://127.0.0.1:{proxy.port}/0", prefix=rstore.prefix, timeout=1.0
    )
    try:
        await store.create_session(new_session("s1"))
        await proxy.cut()  # the pooled connection is reset under the store
        with pytest.raises(StoreUnavailableError) as caught:
            await store.rotate(rotation("s1", 0))
        assert caught.value.__cause__ is None
        assert caught.value.__suppress_context__
        assert "sealed" not in str(caught.value)
        # While cut, reconnecting is refused: still unavailable, still nothing written.
        with pytest.raises(StoreUnavailableError):
            await store.rotate(rotation("s1", 0))
        with pytest.raises(StoreUnavailableError):
            await store.revoke_session("s1", now=T0, reason="x", event_expires_at=T0 + 1)

        # The direct store (not through the proxy) sees the session untouched.
        untouched = await rstore.get_session("s1")
        assert untouched is not None
        assert (untouched.generation, untouched.revoked_at) == (0, None)

        await proxy.restore()
        result = await store.rotate(rotation("s1", 0))
        assert result.status is RotateStatus.ROTATED
        assert result.session is not None
        assert result.session.generation == 1
    finally:
        await store.close()


async def test_outage_loses_no_user_and_counts_no_failure(
    proxy: CuttableProxy, rstore: RedisStore
) -> None:
    store = await RedisStore.connect(
        f"redis://127.0.0.1:{proxy.port}/0", prefix=rstore.prefix, timeout=1.0
    )
    try:
        await store.create_user(user())
        assert await store.record_failure("acct:ada", now=T0, window=60) == 1
        await proxy.cut()
        with pytest.raises(StoreUnavailableError) as caught:
            await store.record_failure("acct:ada", now=T0 + 1, window=60)
        assert caught.value.__cause__ is None
        with pytest.raises(StoreUnavailableError):
            await store.update_user(replace(user(), username="ada2"))
        with pytest.raises(StoreUnavailableError):
            await store.get_user("ada")
        assert await rstore.failures("acct:ada", now=T0 + 2) == (1, T0 + 60)
        assert await rstore.get_user("ada") == user()
        await proxy.restore()
        assert await store.record_failure("acct:ada", now=T0 + 3, window=60) == 2
    finally:
        await store.close()


async def test_connect_while_unreachable_raises_unavailable(proxy: CuttableProxy) -> None:
    await proxy.cut()
    with pytest.raises(StoreUnavailableError):
        await RedisStore.connect(f"redis://127.0.0.1:{proxy.port}/0", prefix=unique_prefix())


async def test_silent_server_times_out_as_unavailable() -> None:
    # A peer that accepts and never answers: only the command timeout ends the wait.
    accepted: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(StoreUnavailableError):
            await RedisStore.connect(f"redis://127.0.0.1:{port}/0", timeout=0.3)
        assert loop.time() - started < 3
    finally:
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()


async def next_messages(pubsub: Any, count: int) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    async with asyncio.timeout(5):
        while len(messages) < count:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is not None:
                messages.append(json.loads(message["data"]))
    return messages


async def test_every_revocation_is_published(rstore: RedisStore, raw: Redis) -> None:
    for sid, sub in [("s1", "ada"), ("s2", "ada"), ("s3", "bob")]:
        await rstore.create_session(new_session(sid, sub))
    pubsub = raw.pubsub()
    await pubsub.subscribe(rstore.channel)
    try:
        at = T0 + 60.123456789  # not representable in 14 digits: must come back exact
        await rstore.rotate(rotation("s1", 0, now=at))
        await rstore.rotate(rotation("s1", 0, now=at + GRACE))  # reuse
        await rstore.revoke_session("s3", now=at, reason="logout", event_expires_at=at + ACCESS)
        await rstore.revoke_user("ada", now=at, reason="password", event_expires_at=at + 1)
        await rstore.revoke_all(now=at, reason="breach", event_expires_at=at + 2)
        published = await next_messages(pubsub, 5)
    finally:
        # redis-py leaves PubSub.aclose unannotated.
        await pubsub.aclose()  # type: ignore[no-untyped-call]
    assert [(m["seq"], m["kind"], m["sid"], m["sub"], m["reason"]) for m in published] == [
        (1, "session", "s1", "ada", "reuse"),
        (2, "session", "s3", "bob", "logout"),
        (3, "session", "s2", "ada", "password"),
        (4, "user", None, "ada", "password"),
        (5, "all", None, None, "breach"),
    ]
    assert published[0]["at"] == at + GRACE
    assert published[1]["expires_at"] == at + ACCESS
    stored = await rstore.revocations_since(0, now=at)
    assert [(e.seq, e.kind, e.at, e.expires_at) for e in stored] == [
        (m["seq"], RevocationKind(m["kind"]), m["at"], m["expires_at"]) for m in published
    ]


async def test_purge_cleans_indexes_of_sessions_collected_by_ttl(
    rstore: RedisStore, raw: Redis
) -> None:
    await rstore.create_session(new_session("s1", "ada"))
    await rstore.create_session(new_session("s2", "ada"))
    # What an elapsed TTL does: the hash vanishes, the index entries stay behind.
    await raw.delete(rstore.session_key("s1"))
    assert await rstore.purge_expired(now=T0 + 1, batch=10) == 0  # not due yet
    assert await rstore.purge_expired(now=T0 + IDLE, batch=10) == 2
    assert await raw.zcard(rstore.user_key("ada")) == 0
    assert await raw.zcard(f"{rstore.prefix}:all") == 0
    assert await rstore.get_session("s2") is None


async def test_purge_keeps_sessions_whose_idle_expiry_slid(rstore: RedisStore, raw: Redis) -> None:
    await rstore.create_session(new_session("s1"))
    await rstore.create_session(new_session("idle"))
    await rstore.rotate(rotation("s1", 0, now=T0 + IDLE - 10))  # slides to T0 + 2 IDLE - 10
    assert await rstore.purge_expired(now=T0 + IDLE, batch=10) == 1  # only "idle"
    assert await rstore.get_session("idle") is None
    assert await rstore.get_session("s1") is not None
    # The index learnt the new expiry, so the next purge has nothing to look at.
    score = await raw.zscore(
        f"{rstore.prefix}:all", json.dumps(["s1", "ada"], separators=(",", ":"))
    )
    assert score == T0 + 2 * IDLE - 10
    assert await rstore.purge_expired(now=T0 + 2 * IDLE - 10, batch=10) == 1
    assert await rstore.get_session("s1") is None


async def test_drop_removes_only_its_own_prefix(redis_url: str, raw: Redis) -> None:
    mine = await RedisStore.connect(redis_url, prefix=unique_prefix())
    other = await RedisStore.connect(redis_url, prefix=unique_prefix())
    try:
        for store in (mine, other):
            await store.create_session(new_session("s1"))
            await store.revoke_session("s1", now=T0, reason="x", event_expires_at=T0 + 9)
            await store.put_key(KeyRecord("k1", "ES256", KeyState.CURRENT, b"jwk", T0))
        await mine.drop()
        assert await keys_of(raw, mine.prefix) == set()
        assert len(await keys_of(raw, other.prefix)) == 7
        assert await other.get_session("s1") is not None
    finally:
        await other.drop()
        await mine.close()
        await other.close()


@pytest.mark.parametrize("prefix", ["a{b}", "", "x*", "has space"], ids=repr)
async def test_prefix_that_would_break_tags_or_drop_is_refused(redis_url: str, prefix: str) -> None:
    with pytest.raises(ConfigurationError):
        await RedisStore.connect(redis_url, prefix=prefix)
