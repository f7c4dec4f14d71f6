"""In-process session store, for tests and single-process demos.

It is the reference implementation of the contract in :mod:`tokenward.stores.base`:
every method runs without awaiting, so each call is atomic on the event loop. Nothing
survives the process.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace

from tokenward.stores.base import (
    KeyRecord,
    NewSession,
    RevocationEvent,
    RevocationKind,
    RotateResult,
    RotateStatus,
    Rotation,
    SessionRecord,
    StoreError,
    UserExistsError,
    UserRecord,
)

__all__ = ["MemoryFeed", "MemoryStore"]


@dataclass(slots=True)
class _Row:
    record: SessionRecord
    current_hash: bytes
    previous_hash: bytes | None = None
    rotated_at: float | None = None
    sealed: bytes | None = None


class MemoryStore:
    """A :class:`~tokenward.stores.base.SessionStore` held in dictionaries.

    ``operations`` counts calls, so benchmarks and tests can see store traffic.
    """

    def __init__(self) -> None:
        self._sessions: dict[str, _Row] = {}
        self._events: list[RevocationEvent] = []
        self._seq = itertools.count(1)
        self._keys: dict[str, KeyRecord] = {}
        self._users: dict[str, UserRecord] = {}
        self._listeners: set[asyncio.Queue[RevocationEvent]] = set()
        self._failures: dict[str, tuple[int, float]] = {}
        self.operations = 0

    async def create_session(self, session: NewSession) -> None:
        self.operations += 1
        if session.sid in self._sessions:
            raise StoreError("session id exists already")
        record = SessionRecord(
            sid=session.sid,
            sub=session.sub,
            created_at=session.created_at,
            last_used_at=session.created_at,
            idle_expires_at=session.idle_expires_at,
            absolute_expires_at=session.absolute_expires_at,
            generation=0,
            scope=session.scope,
            client_id=session.client_id,
            user_agent=session.user_agent,
            ip=session.ip,
        )
        self._sessions[session.sid] = _Row(record, session.refresh_hash)

    async def rotate(self, rotation: Rotation) -> RotateResult:
        self.operations += 1
        row = self._sessions.get(rotation.sid)
        if row is None:
            return RotateResult(RotateStatus.UNKNOWN)
        record = row.record
        now = rotation.now
        if record.revoked_at is not None:
            return RotateResult(RotateStatus.REVOKED, record)
        if now >= record.idle_expires_at or now >= record.absolute_expires_at:
            return RotateResult(RotateStatus.EXPIRED, record)
        if rotation.generation == record.generation and rotation.presented_hash == row.current_hash:
            row.record = replace(
                record,
                generation=record.generation + 1,
                last_used_at=now,
                idle_expires_at=rotation.idle_expires_at,
            )
            row.previous_hash = row.current_hash
            row.current_hash = rotation.successor_hash
            row.rotated_at = now
            row.sealed = rotation.successor_sealed
            return RotateResult(RotateStatus.ROTATED, row.record, rotation.successor_sealed)
        if (
            rotation.generation == record.generation - 1
            and rotation.presented_hash == row.previous_hash
            and row.rotated_at is not None
            and now < row.rotated_at + rotation.grace
        ):
            return RotateResult(RotateStatus.REPLAYED, record, row.sealed)
        if rotation.generation < record.generation:
            self._revoke(row, now, "reuse", rotation.event_expires_at)
            return RotateResult(RotateStatus.REUSED, row.record)
        return RotateResult(RotateStatus.UNKNOWN)

    def _record(self, event: RevocationEvent) -> None:
        self._events.append(event)
        for queue in self._listeners:
            queue.put_nowait(event)

    def revocation_feed(self) -> MemoryFeed:
        """The in-process feed of this store's revocation events."""
        return MemoryFeed(self)

    def _revoke(self, row: _Row, now: float, reason: str, expires_at: float) -> None:
        row.record = replace(row.record, revoked_at=now, revoked_reason=reason)
        self._record(
            RevocationEvent(
                seq=next(self._seq),
                kind=RevocationKind.SESSION,
                at=now,
                expires_at=expires_at,
                sid=row.record.sid,
                sub=row.record.sub,
                reason=reason,
            )
        )

    async def get_session(self, sid: str) -> SessionRecord | None:
        self.operations += 1
        row = self._sessions.get(sid)
        return row.record if row else None

    async def list_sessions(self, sub: str, now: float) -> Sequence[SessionRecord]:
        self.operations += 1
        found = [r.record for r in self._sessions.values() if r.record.sub == sub]
        return sorted((r for r in found if r.active(now)), key=lambda r: (r.created_at, r.sid))

    async def revoke_session(
        self, sid: str, *, now: float, reason: str, event_expires_at: float
    ) -> bool:
        self.operations += 1
        row = self._sessions.get(sid)
        if row is None or row.record.revoked_at is not None:
            return False
        self._revoke(row, now, reason, event_expires_at)
        return True

    def _revoke_many(self, sub: str | None, now: float, reason: str) -> list[_Row]:
        """Revoke the active sessions of ``sub`` (everyone's if None), oldest first."""
        rows = sorted(
            (
                row
                for row in self._sessions.values()
                if (sub is None or row.record.sub == sub) and row.record.active(now)
            ),
            key=lambda row: (row.record.created_at, row.record.sid),
        )
        for row in rows:
            row.record = replace(row.record, revoked_at=now, revoked_reason=reason)
        return rows

    async def revoke_user(
        self, sub: str, *, now: float, reason: str, event_expires_at: float
    ) -> int:
        self.operations += 1
        rows = self._revoke_many(sub, now, reason)
        # One SESSION event per revoked session, so verifiers deny exactly those sids
        # (even tokens issued in this very second), then the USER event.
        for row in rows:
            self._record(
                RevocationEvent(
                    next(self._seq),
                    RevocationKind.SESSION,
                    now,
                    event_expires_at,
                    sid=row.record.sid,
                    sub=row.record.sub,
                    reason=reason,
                )
            )
        self._record(
            RevocationEvent(
                next(self._seq), RevocationKind.USER, now, event_expires_at, sub=sub, reason=reason
            )
        )
        return len(rows)

    async def revoke_all(self, *, now: float, reason: str, event_expires_at: float) -> int:
        self.operations += 1
        count = len(self._revoke_many(None, now, reason))
        self._record(
            RevocationEvent(
                next(self._seq), RevocationKind.ALL, now, event_expires_at, reason=reason
            )
        )
        return count

    async def revocations_since(self, seq: int, *, now: float) -> Sequence[RevocationEvent]:
        self.operations += 1
        return [e for e in self._events if e.seq > seq and e.expires_at > now]

    async def purge_expired(self, *, now: float, batch: int) -> int:
        self.operations += 1
        expired = [
            sid
            for sid, row in self._sessions.items()
            if now >= row.record.idle_expires_at or now >= row.record.absolute_expires_at
        ][:batch]
        for sid in expired:
            del self._sessions[sid]
        stale = [e for e in self._events if e.expires_at <= now][:batch]
        if stale:
            gone = {e.seq for e in stale}
            self._events = [e for e in self._events if e.seq not in gone]
        return len(expired) + len(stale)

    async def put_key(self, key: KeyRecord) -> None:
        self.operations += 1
        self._keys[key.kid] = key

    async def list_keys(self) -> Sequence[KeyRecord]:
        self.operations += 1
        return sorted(self._keys.values(), key=lambda k: (k.created_at, k.kid))

    async def delete_key(self, kid: str) -> bool:
        self.operations += 1
        return self._keys.pop(kid, None) is not None

    async def create_user(self, user: UserRecord) -> None:
        self.operations += 1
        taken = any(u.sub == user.sub for u in self._users.values())
        if user.username in self._users or taken:
            raise UserExistsError("a user with that name exists already")
        self._users[user.username] = user

    async def get_user(self, username: str) -> UserRecord | None:
        self.operations += 1
        return self._users.get(username)

    async def list_users(self) -> Sequence[UserRecord]:
        self.operations += 1
        return sorted(self._users.values(), key=lambda u: u.username)

    async def update_user(self, user: UserRecord) -> bool:
        self.operations += 1
        for name, existing in self._users.items():
            if existing.sub == user.sub:
                if name != user.username and user.username in self._users:
                    raise UserExistsError("a user with that name exists already")
                del self._users[name]
                self._users[user.username] = user
                return True
        return False

    async def record_failure(self, key: str, *, now: float, window: float) -> int:
        self.operations += 1
        count, ends = self._failures.get(key, (0, now))
        if now >= ends:
            count, ends = 0, now + window
        self._failures[key] = (count + 1, ends)
        return count + 1

    async def failures(self, key: str, *, now: float) -> tuple[int, float]:
        self.operations += 1
        count, ends = self._failures.get(key, (0, now))
        return (count, ends) if now < ends else (0, now)

    async def clear_failures(self, key: str) -> None:
        self.operations += 1
        self._failures.pop(key, None)

    async def close(self) -> None:
        self._sessions.clear()


class MemoryFeed:
    """In-process :class:`~tokenward.stores.base.RevocationFeed` over a :class:`MemoryStore`."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    async def events(self, since: int, *, now: float) -> AsyncIterator[RevocationEvent | None]:
        queue: asyncio.Queue[RevocationEvent] = asyncio.Queue()
        self._store._listeners.add(queue)
        try:
            last = since
            for event in await self._store.revocations_since(since, now=now):
                last = event.seq
                yield event
            yield None  # Listening, and the snapshot delivered.
            while True:
                event = await queue.get()
                if event.seq > last:
                    last = event.seq
                    yield event
        finally:
            self._store._listeners.discard(queue)
