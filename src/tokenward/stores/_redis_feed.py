"""The Redis revocation feed: pub/sub for live events, the event zset for the snapshot.

Every event is PUBLISHed, as the JSON it is stored as, on ``P:revocations`` by the Lua
script that records it (see :mod:`tokenward.stores.redis`), so messages arrive in
``seq`` order and exactly when the event exists. :meth:`RedisFeed.events`:

1. subscribes on a connection of its own and waits for Redis to confirm the
   subscription: from then on every recorded event reaches this connection;
2. reads the snapshot (:meth:`RedisStore.revocations_since`);
3. yields the messages, skipping any ``seq`` at or below the last one yielded (an event
   recorded between steps 1 and 2 is in both), so there is neither a gap nor a
   duplicate across the switch.

On Redis Cluster (:mod:`tokenward.stores._redis_cluster`) the feed subscribes on the
node that holds the event log, whose scripts publish every recorded event, so the
argument above holds unchanged (classic PUBLISH reaches every node's subscribers). A
reuse also arrives as an unsequenced notice (``seq`` 0), published by the ``rotate``
script before the event is recorded, and possibly again later with its ``seq``: the
feed yields notices as they come, without moving the last ``seq``. Applying an event
twice is harmless (:meth:`~tokenward.service.DenyList.apply` is idempotent).

Failures: a lost connection raises :class:`StoreUnavailableError` and the follower
reconnects from the last ``seq`` it applied; a malformed message (published by something
else) raises :class:`StoreError`, with the same effect. A connection that dies without
closing (a vanished host, a dropped route) is found by a heartbeat: after ``heartbeat``
seconds without a message the feed sends a PING, and when nothing comes back within
another ``heartbeat`` it gives the connection up.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator, Iterator
from typing import Any

from redis.asyncio.client import PubSub
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from tokenward.errors import ConfigurationError
from tokenward.stores.base import RevocationEvent, StoreError, StoreUnavailableError
from tokenward.stores.redis import RedisStore, _event

__all__ = ["RedisFeed"]


@contextlib.contextmanager
def _translate() -> Iterator[None]:
    """Map client failures to store errors (messages never carry the URL)."""
    try:
        yield
    except (RedisConnectionError, RedisTimeoutError, OSError):
        raise StoreUnavailableError("the redis revocation feed lost its connection") from None
    except RedisError as exc:
        raise StoreError(f"the redis revocation feed failed: {type(exc).__name__}") from None


def _decode(data: bytes) -> RevocationEvent:
    try:
        return _event(data)
    except (ValueError, KeyError, TypeError):
        # Not what the store's scripts publish. Reconnecting re-reads the stored events,
        # so a real event is not lost; the follower logs the error code.
        raise StoreError("a malformed message on the redis revocation channel") from None


class RedisFeed:
    """A :class:`~tokenward.stores.base.RevocationFeed` over a :class:`RedisStore`.

    Get one from :meth:`RedisStore.revocation_feed`; each :meth:`events` call holds one
    connection of the store's pool for as long as it runs::

        follower = RevocationFollower(store.revocation_feed(), DenyList())
    """

    def __init__(self, store: RedisStore, *, heartbeat: float = 5.0) -> None:
        if type(heartbeat) not in (int, float) or not 0 < heartbeat < math.inf:
            raise ConfigurationError("heartbeat must be a positive number of seconds")
        self._store = store
        self.heartbeat = float(heartbeat)

    def __repr__(self) -> str:
        return f"RedisFeed(channel={self._store.channel!r}, heartbeat={self.heartbeat:g})"

    async def events(self, since: int, *, now: float) -> AsyncIterator[RevocationEvent | None]:
        """Yield the unexpired events after ``since`` (at ``now``), ``None``, then live ones."""
        store = self._store
        with _translate():
            pubsub: PubSub = await store._subscriber()
        try:
            with _translate():
                await pubsub.subscribe(store.channel)
                await self._confirmed(pubsub)
            last = since
            for event in await store.revocations_since(since, now=now):
                last = event.seq
                yield event
            yield None  # Subscribed, and the snapshot delivered.
            pinged = False
            while True:
                with _translate():
                    message: dict[str, Any] | None = await pubsub.get_message(
                        timeout=self.heartbeat
                    )
                if message is None:
                    if pinged:
                        raise StoreUnavailableError("redis did not answer the feed's PING")
                    with _translate():
                        await pubsub.ping()
                    pinged = True
                    continue
                pinged = False
                if message["type"] != "message":
                    continue  # The PONG, or a subscription notice.
                event = _decode(message["data"])
                if event.seq == 0:
                    yield event  # A cluster's notice of a reuse, not yet recorded.
                elif event.seq > last:
                    last = event.seq
                    yield event
        finally:
            # Drops the connection (a subscribed one cannot go back to the pool as is).
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()  # type: ignore[no-untyped-call]  # untyped in redis-py

    async def _confirmed(self, pubsub: PubSub) -> None:
        """Wait for Redis to confirm the subscription (TimeoutError after ``heartbeat``)."""
        while True:
            message: dict[str, Any] | None = await pubsub.get_message(timeout=self.heartbeat)
            if message is None:
                raise TimeoutError("redis did not confirm the subscription")
            if message["type"] == "subscribe":
                return
