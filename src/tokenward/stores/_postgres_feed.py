"""The PostgreSQL revocation feed: LISTEN/NOTIFY for live events, the table for the snapshot.

Every event is sent with ``pg_notify`` on ``<schema>_revocations`` by the transaction
that records it, and delivered when that transaction commits; events commit in ``seq``
order (see :mod:`tokenward.stores._postgres_schema`). :meth:`PostgresFeed.events`:

1. opens a connection of its own (never a pooled one: LISTEN belongs to a session, and
   the feed holds it for as long as it runs) and runs ``LISTEN``; once that returns,
   every event committed afterwards will be delivered to it;
2. reads the snapshot (:meth:`PostgresStore.revocations_since`, on the pool);
3. yields the notifications, skipping any ``seq`` at or below the last one yielded (an
   event committed between steps 1 and 2 is in both). A notification too large for a
   payload carries only ``{"seq": n}`` (:func:`decode_notification`); the feed then
   reads that event from the table.

Failures: a lost connection raises :class:`StoreUnavailableError` at once (asyncpg
reports it to a termination listener), and the follower reconnects from the last
``seq`` it applied; a malformed notification (sent by something else) raises
:class:`StoreError`, with the same effect. A connection that dies without closing is
found by a heartbeat: after ``heartbeat`` seconds without a notification the feed runs
``SELECT 1``, which fails within ``timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from tokenward.errors import ConfigurationError
from tokenward.stores.base import RevocationEvent, StoreError, StoreUnavailableError
from tokenward.stores.postgres import (
    _PG,
    _UNAVAILABLE,
    PostgresStore,
    _translate,
    decode_notification,
)

__all__ = ["PostgresFeed"]

Connector = Callable[[], Awaitable[Any]]
"""Opens one asyncpg connection to the store's database."""


def _decode(payload: str) -> RevocationEvent | int:
    try:
        return decode_notification(payload)
    except (ValueError, KeyError, TypeError):
        # Not what the store's functions send. Reconnecting re-reads the stored events,
        # so a real event is not lost; the follower logs the error code.
        raise StoreError("a malformed notification on the revocation channel") from None


class PostgresFeed:
    """A :class:`~tokenward.stores.base.RevocationFeed` over a :class:`PostgresStore`.

    Get one from :meth:`PostgresStore.revocation_feed`; each running :meth:`events`
    holds one database connection of its own::

        follower = RevocationFollower(store.revocation_feed(), DenyList())
    """

    def __init__(
        self,
        store: PostgresStore,
        connect: Connector,
        *,
        heartbeat: float = 5.0,
        timeout: float = 5.0,
    ) -> None:
        for name, value in (("heartbeat", heartbeat), ("timeout", timeout)):
            if type(value) not in (int, float) or not 0 < value < math.inf:
                raise ConfigurationError(f"{name} must be a positive number of seconds")
        self._store = store
        self._connect = connect
        self.heartbeat = float(heartbeat)
        self.timeout = float(timeout)

    def __repr__(self) -> str:
        return f"PostgresFeed(channel={self._store.channel!r}, heartbeat={self.heartbeat:g})"

    async def events(self, since: int, *, now: float) -> AsyncIterator[RevocationEvent | None]:
        """Yield the unexpired events after ``since`` (at ``now``), ``None``, then live ones."""
        store = self._store
        # Payloads in commit order; None once the connection is gone.
        inbox: asyncio.Queue[str | None] = asyncio.Queue()

        def notified(_connection: object, _pid: int, _channel: str, payload: str) -> None:
            inbox.put_nowait(payload)

        def terminated(_connection: object) -> None:
            inbox.put_nowait(None)

        with _translate():
            connection = await self._connect()
        try:
            connection.add_termination_listener(terminated)
            with _translate():
                await connection.add_listener(store.channel, notified)
            last = since
            for recorded in await store.revocations_since(since, now=now):
                last = recorded.seq
                yield recorded
            yield None  # Listening, and the snapshot delivered.
            while True:
                try:
                    payload = await asyncio.wait_for(inbox.get(), self.heartbeat)
                except TimeoutError:
                    with _translate():
                        await connection.fetchval("SELECT 1", timeout=self.timeout)
                    continue
                if payload is None:
                    raise StoreUnavailableError("the PostgreSQL feed lost its connection")
                item = _decode(payload)
                seq = item if isinstance(item, int) else item.seq
                if seq <= last:
                    continue
                event: RevocationEvent | None
                if isinstance(item, int):
                    # Too large for a payload: read it. Gone means expired (or purged)
                    # meanwhile, and then there is nothing left to deny.
                    found = await store.revocations_since(seq - 1, now=now)
                    event = next((e for e in found if e.seq == seq), None)
                else:
                    event = item
                last = seq
                if event is not None:
                    yield event
        finally:
            # On failure asyncpg aborts the connection before raising: it is gone either way.
            with contextlib.suppress(*_UNAVAILABLE, _PG.PostgresError):
                await connection.close(timeout=self.timeout)
