"""One contract suite, run against every backend (memory, SQLite, Redis, PostgreSQL)."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from tokenward.stores.base import (
    KeyRecord,
    KeyState,
    NewSession,
    RevocationKind,
    RotateStatus,
    Rotation,
    SessionStore,
    StoreError,
)

T0 = 1_800_000_000.0
IDLE = 3600.0
ABSOLUTE = 86400.0
GRACE = 10.0
ACCESS = 900.0


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
        scope="read write",
        client_id="web",
        user_agent="Firefox/140",
        ip="127.0.0.1",
    )


def rotation(
    sid: str = "s1", generation: int = 0, *, now: float = T0 + 60, presented: str | None = None
) -> Rotation:
    return Rotation(
        sid=sid,
        generation=generation,
        presented_hash=h(presented or f"{sid}-{generation}"),
        successor_hash=h(f"{sid}-{generation + 1}"),
        successor_sealed=f"sealed-{sid}-{generation + 1}".encode(),
        now=now,
        idle_expires_at=min(now + IDLE, T0 + ABSOLUTE),
        grace=GRACE,
        event_expires_at=now + ACCESS,
    )


async def test_create_and_get(store: SessionStore) -> None:
    await store.create_session(new_session())
    record = await store.get_session("s1")
    assert record is not None
    assert (record.sid, record.sub, record.generation) == ("s1", "ada", 0)
    assert (record.scope, record.client_id, record.user_agent, record.ip) == (
        "read write",
        "web",
        "Firefox/140",
        "127.0.0.1",
    )
    assert record.created_at == record.last_used_at == T0
    assert record.idle_expires_at == T0 + IDLE
    assert record.absolute_expires_at == T0 + ABSOLUTE
    assert record.revoked_at is None
    assert await store.get_session("nope") is None


async def test_create_duplicate_sid_is_refused(store: SessionStore) -> None:
    await store.create_session(new_session())
    with pytest.raises(StoreError):
        await store.create_session(new_session())


async def test_rotate_current_advances_generation(store: SessionStore) -> None:
    await store.create_session(new_session())
    result = await store.rotate(rotation(now=T0 + 60))
    assert result.status is RotateStatus.ROTATED
    assert result.sealed == b"sealed-s1-1"
    record = await store.get_session("s1")
    assert record is not None
    assert record.generation == 1
    assert record.last_used_at == T0 + 60
    assert record.idle_expires_at == T0 + 60 + IDLE
    # The successor is now current and rotates in turn.
    assert (await store.rotate(rotation(generation=1, now=T0 + 120))).status is (
        RotateStatus.ROTATED
    )


async def test_replay_within_grace_returns_stored_successor(store: SessionStore) -> None:
    await store.create_session(new_session())
    await store.rotate(rotation(now=T0 + 60))
    racer = Rotation(
        sid="s1",
        generation=0,
        presented_hash=h("s1-0"),
        successor_hash=h("other"),
        successor_sealed=b"loser-pair",
        now=T0 + 60 + GRACE - 0.5,
        idle_expires_at=T0 + 70 + IDLE,
        grace=GRACE,
        event_expires_at=T0 + 70 + ACCESS,
    )
    result = await store.rotate(racer)
    assert result.status is RotateStatus.REPLAYED
    assert result.sealed == b"sealed-s1-1"
    record = await store.get_session("s1")
    assert record is not None
    assert record.generation == 1
    assert record.revoked_at is None
    assert await store.revocations_since(0, now=T0 + 61) == []


async def test_previous_after_grace_is_reuse(store: SessionStore) -> None:
    await store.create_session(new_session())
    await store.rotate(rotation(now=T0 + 60))
    result = await store.rotate(rotation(generation=0, now=T0 + 60 + GRACE))
    assert result.status is RotateStatus.REUSED
    record = await store.get_session("s1")
    assert record is not None
    assert record.revoked_at == T0 + 60 + GRACE
    assert record.revoked_reason == "reuse"
    events = await store.revocations_since(0, now=T0 + 100)
    assert [(e.kind, e.sid, e.sub, e.reason) for e in events] == [
        (RevocationKind.SESSION, "s1", "ada", "reuse")
    ]
    assert events[0].expires_at == T0 + 60 + GRACE + ACCESS
    # The current token no longer works either: the whole session is gone.
    assert (await store.rotate(rotation(generation=1, now=T0 + 80))).status is (
        RotateStatus.REVOKED
    )


async def test_older_generation_is_reuse_even_within_grace(store: SessionStore) -> None:
    await store.create_session(new_session())
    await store.rotate(rotation(generation=0, now=T0 + 60))
    await store.rotate(rotation(generation=1, now=T0 + 61))
    result = await store.rotate(rotation(generation=0, now=T0 + 62))
    assert result.status is RotateStatus.REUSED


async def test_unknown_session_and_foreign_hash(store: SessionStore) -> None:
    assert (await store.rotate(rotation(sid="ghost"))).status is RotateStatus.UNKNOWN
    await store.create_session(new_session())
    forged = rotation(generation=0, presented="not-ours")
    assert (await store.rotate(forged)).status is RotateStatus.UNKNOWN
    ahead = rotation(generation=5)
    assert (await store.rotate(ahead)).status is RotateStatus.UNKNOWN
    record = await store.get_session("s1")
    assert record is not None
    assert (record.generation, record.revoked_at) == (0, None)


@pytest.mark.parametrize(
    ("now", "status"),
    [
        pytest.param(T0 + IDLE, RotateStatus.EXPIRED, id="idle-expiry-boundary"),
        pytest.param(T0 + IDLE - 1, RotateStatus.ROTATED, id="just-before-idle-expiry"),
    ],
)
async def test_idle_expiry(store: SessionStore, now: float, status: RotateStatus) -> None:
    await store.create_session(new_session())
    assert (await store.rotate(rotation(now=now))).status is status


async def test_absolute_expiry_caps_sliding(store: SessionStore) -> None:
    await store.create_session(new_session())
    now = T0
    generation = 0
    # Keep the session busy: the idle expiry slides, but never past the absolute one.
    while now + 3000 < T0 + ABSOLUTE:
        now += 3000
        result = await store.rotate(rotation(generation=generation, now=now))
        assert result.status is RotateStatus.ROTATED
        generation += 1
    record = await store.get_session("s1")
    assert record is not None
    assert record.idle_expires_at <= record.absolute_expires_at
    late = rotation(generation=generation, now=T0 + ABSOLUTE)
    assert (await store.rotate(late)).status is RotateStatus.EXPIRED


async def test_revoke_session(store: SessionStore) -> None:
    await store.create_session(new_session())
    assert await store.revoke_session("s1", now=T0 + 5, reason="logout", event_expires_at=T0 + 905)
    assert not await store.revoke_session(
        "s1", now=T0 + 6, reason="logout", event_expires_at=T0 + 906
    )
    assert not await store.revoke_session(
        "ghost", now=T0 + 6, reason="logout", event_expires_at=T0 + 906
    )
    assert (await store.rotate(rotation(now=T0 + 7))).status is RotateStatus.REVOKED
    events = await store.revocations_since(0, now=T0 + 10)
    assert [(e.kind, e.sid, e.reason) for e in events] == [(RevocationKind.SESSION, "s1", "logout")]


async def test_revoke_user_and_all(store: SessionStore) -> None:
    for sid, sub in [("a1", "ada"), ("a2", "ada"), ("b1", "bob"), ("c1", "cyd")]:
        await store.create_session(new_session(sid, sub))
    assert await store.revoke_user("ada", now=T0 + 1, reason="password", event_expires_at=T0 + 901)
    assert await store.list_sessions("ada", T0 + 2) == []
    assert [s.sid for s in await store.list_sessions("bob", T0 + 2)] == ["b1"]
    assert await store.revoke_all(now=T0 + 3, reason="breach", event_expires_at=T0 + 903) == 2
    assert await store.list_sessions("bob", T0 + 4) == []
    events = await store.revocations_since(0, now=T0 + 5)
    # revoke_user: one SESSION event per revoked session, then the USER event;
    # revoke_all: one ALL event, whatever the number of sessions.
    assert [(e.kind, e.sid, e.sub, e.at) for e in events] == [
        (RevocationKind.SESSION, "a1", "ada", T0 + 1),
        (RevocationKind.SESSION, "a2", "ada", T0 + 1),
        (RevocationKind.USER, None, "ada", T0 + 1),
        (RevocationKind.ALL, None, None, T0 + 3),
    ]
    seqs = [e.seq for e in events]
    assert seqs == sorted(set(seqs))
    assert [e.kind for e in await store.revocations_since(events[2].seq, now=T0 + 5)] == [
        RevocationKind.ALL
    ]


async def test_revoke_user_records_a_session_event_per_revoked_session(
    store: SessionStore,
) -> None:
    await store.create_session(new_session("late", "ada", at=T0 + 30))
    await store.create_session(new_session("early", "ada", at=T0 + 10))
    await store.create_session(new_session("gone", "ada", at=T0 - ABSOLUTE))  # long expired
    await store.create_session(new_session("out", "ada", at=T0 + 20))
    await store.create_session(new_session("bob1", "bob", at=T0 + 20))
    await store.revoke_session("out", now=T0 + 40, reason="logout", event_expires_at=T0 + 940)
    (logout,) = await store.revocations_since(0, now=T0 + 40)
    assert (
        await store.revoke_user(
            "ada", now=T0 + 50.25, reason="password_changed", event_expires_at=T0 + 950.5
        )
        == 2
    )
    events = await store.revocations_since(logout.seq, now=T0 + 51)
    # Only the sessions this call revoked (not the expired one, not the one revoked
    # before, not bob's), oldest first, each with every field, then the USER event.
    assert [(e.kind, e.sid, e.sub, e.reason, e.at, e.expires_at) for e in events] == [
        (RevocationKind.SESSION, "early", "ada", "password_changed", T0 + 50.25, T0 + 950.5),
        (RevocationKind.SESSION, "late", "ada", "password_changed", T0 + 50.25, T0 + 950.5),
        (RevocationKind.USER, None, "ada", "password_changed", T0 + 50.25, T0 + 950.5),
    ]
    assert [e.seq for e in events] == sorted({e.seq for e in events})
    revoked = [await store.get_session(sid) for sid in ("early", "late")]
    assert [(r.revoked_at, r.revoked_reason) for r in revoked if r is not None] == [
        (T0 + 50.25, "password_changed")
    ] * 2
    bob = await store.get_session("bob1")
    assert bob is not None
    assert bob.revoked_at is None
    # Nothing left to revoke: the USER event alone.
    assert await store.revoke_user("ada", now=T0 + 60, reason="x", event_expires_at=T0 + 960) == 0
    (last,) = await store.revocations_since(events[-1].seq, now=T0 + 61)
    assert (last.kind, last.sid, last.sub) == (RevocationKind.USER, None, "ada")


async def test_revoke_user_counts_only_active_sessions(store: SessionStore) -> None:
    await store.create_session(new_session("a1", "ada"))
    await store.create_session(new_session("a2", "ada", at=T0 - ABSOLUTE))  # long expired
    await store.revoke_session("a1", now=T0, reason="logout", event_expires_at=T0 + ACCESS)
    await store.create_session(new_session("a3", "ada"))
    assert await store.revoke_user("ada", now=T0 + 1, reason="x", event_expires_at=T0 + 9) == 1


async def test_list_sessions_oldest_first_and_active_only(store: SessionStore) -> None:
    await store.create_session(new_session("late", at=T0 + 10))
    await store.create_session(new_session("early", at=T0))
    await store.create_session(new_session("gone", at=T0 - IDLE - 1))
    listed = await store.list_sessions("ada", T0 + 20)
    assert [s.sid for s in listed] == ["early", "late"]


async def test_events_expire(store: SessionStore) -> None:
    await store.create_session(new_session())
    await store.revoke_session("s1", now=T0, reason="logout", event_expires_at=T0 + ACCESS)
    assert len(await store.revocations_since(0, now=T0 + ACCESS - 1)) == 1
    assert await store.revocations_since(0, now=T0 + ACCESS) == []


async def test_purge_expired_in_batches(store: SessionStore) -> None:
    for i in range(7):
        await store.create_session(new_session(f"old{i}", at=T0 - ABSOLUTE - i))
    await store.create_session(new_session("live"))
    await store.revoke_session("old0", now=T0 - 10, reason="x", event_expires_at=T0 - 1)
    deleted = []
    while True:
        count = await store.purge_expired(now=T0, batch=3)
        assert count <= 6  # at most a batch of sessions plus a batch of events
        if count == 0:
            break
        deleted.append(count)
    assert sum(deleted) == 8  # seven sessions and one expired event
    assert len(deleted) >= 3
    assert await store.get_session("old3") is None
    assert await store.get_session("live") is not None


async def test_concurrent_rotation_has_one_winner(store: SessionStore) -> None:
    await store.create_session(new_session())

    async def attempt(i: int) -> tuple[RotateStatus, bytes | None]:
        result = await store.rotate(
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
    record = await store.get_session("s1")
    assert record is not None
    assert (record.generation, record.revoked_at) == (1, None)


async def test_keys(store: SessionStore) -> None:
    first = KeyRecord("k1", "ES256", KeyState.CURRENT, b"secret-jwk-1", T0)
    second = KeyRecord("k2", "ES256", KeyState.NEXT, b"secret-jwk-2", T0 + 1)
    await store.put_key(second)
    await store.put_key(first)
    assert [k.kid for k in await store.list_keys()] == ["k1", "k2"]
    retired = KeyRecord("k1", "ES256", KeyState.RETIRED, b"secret-jwk-1", T0, retire_after=T0 + 9)
    await store.put_key(retired)
    keys = {k.kid: k for k in await store.list_keys()}
    assert keys["k1"].state is KeyState.RETIRED
    assert keys["k1"].retire_after == T0 + 9
    assert keys["k1"].material == b"secret-jwk-1"
    assert keys["k2"].state is KeyState.NEXT
    assert await store.delete_key("k1")
    assert not await store.delete_key("k1")
    assert [k.kid for k in await store.list_keys()] == ["k2"]


async def test_each_rotate_result_carries_the_session_as_stored(store: SessionStore) -> None:
    await store.create_session(new_session())
    await store.create_session(new_session("s2"))
    outcomes = [
        (rotation(), RotateStatus.ROTATED),
        (rotation(now=T0 + 61), RotateStatus.REPLAYED),
        (rotation(now=T0 + 60 + GRACE + 1), RotateStatus.REUSED),
        (rotation(generation=1, now=T0 + 100), RotateStatus.REVOKED),
        (rotation("s2", now=T0 + IDLE + 1), RotateStatus.EXPIRED),
    ]
    for attempt, status in outcomes:
        result = await store.rotate(attempt)
        assert result.status is status
        assert result.session == await store.get_session(attempt.sid), status
