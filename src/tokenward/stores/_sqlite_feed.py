"""The SQLite revocation feed: one ``seq > ?`` query per poll interval, never per request.

SQLite has no notifications, so :meth:`SQLiteFeed.events` polls the ``revocations``
table with :meth:`SQLiteStore.revocations_since` from the last ``seq`` it yielded. The
first poll is the snapshot; the next ones run on a fixed schedule, every
``poll_interval`` seconds from the first (a poll that overran its slot is not made up
for, so a slow disk never causes a burst of queries). Writers hold the file's write
lock from allocating a ``seq`` to commit, so rows become visible in ``seq`` order and
polling from the last ``seq`` seen misses none.

An event reaches the verifier at most ``poll_interval`` (plus the query) after it was
committed. Each poll is one read on the store's thread; WAL mode lets it run while
another process writes. A store that is closed, or whose file cannot be read, raises
:class:`StoreUnavailableError`; the follower retries with backoff.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Sequence

from tokenward.errors import ConfigurationError
from tokenward.stores.base import RevocationEvent, StoreError, StoreUnavailableError
from tokenward.stores.sqlite import SQLiteStore

__all__ = ["SQLiteFeed"]


class SQLiteFeed:
    """A :class:`~tokenward.stores.base.RevocationFeed` polling a :class:`SQLiteStore`.

    Get one from :meth:`SQLiteStore.revocation_feed`::

        follower = RevocationFollower(store.revocation_feed(poll_interval=0.5), DenyList())
    """

    def __init__(self, store: SQLiteStore, *, poll_interval: float = 1.0) -> None:
        if type(poll_interval) not in (int, float) or not 0 < poll_interval < math.inf:
            raise ConfigurationError("poll_interval must be a positive number of seconds")
        self._store = store
        self.poll_interval = float(poll_interval)
        self.polls = 0
        """Queries made by this feed (one per interval while it runs)."""

    def __repr__(self) -> str:
        return f"SQLiteFeed(path={self._store.path!r}, poll_interval={self.poll_interval:g})"

    async def events(self, since: int, *, now: float) -> AsyncIterator[RevocationEvent | None]:
        """Yield the unexpired events after ``since`` (at ``now``), ``None`` once the first
        poll is delivered, then new events as polled.

        Later polls filter by the same ``now``: that only lets through an event that
        expired meanwhile, which the deny list drops when it prunes.
        """
        loop = asyncio.get_running_loop()
        last = since
        next_poll = loop.time()
        first = True
        while True:
            for event in await self._poll(last, now):
                last = event.seq
                yield event
            if first:
                first = False
                yield None  # The snapshot: the first poll answered.
            next_poll += self.poll_interval
            current = loop.time()
            if next_poll < current:  # Overran: skip the missed slots, keep the phase.
                next_poll += math.ceil((current - next_poll) / self.poll_interval) * (
                    self.poll_interval
                )
            await asyncio.sleep(next_poll - current)

    async def _poll(self, since: int, now: float) -> Sequence[RevocationEvent]:
        self.polls += 1
        try:
            return await self._store.revocations_since(since, now=now)
        except StoreUnavailableError:
            raise
        except StoreError:
            if self._store._closed:
                raise StoreUnavailableError("the SQLite store is closed") from None
            raise
