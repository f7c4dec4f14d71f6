"""Background work of a running server: purging, the revocation feed, key rotation.

Two loops, each one call per interval, each surviving store outages (logged and
counted; the next round tries again), and the revocation follower:

* purge (``purge_interval``): expired sessions and revocation events, in batches;
* keys (``key_interval``, 60 s by default): reload the key ring (another instance or
  ``tokenward keys rotate`` may have changed it), follow the rotation schedule, prune
  retired keys whose tokens have all expired;
* revocations: a :class:`~tokenward.service.RevocationFollower` over the store's
  revocation feed (Redis pub/sub, PostgreSQL LISTEN/NOTIFY, SQLite polling every
  ``feed_interval``, 1 s by default) applies the events recorded by other processes
  sharing the store to this process's deny list, so an access token revoked through
  one instance is refused by all of them. It reconnects on its own after an outage and
  then catches up (see ``docs/revocation.md``). A store without a feed is polled with
  :meth:`Housekeeper.sync_revocations` every ``feed_interval`` instead.

The rotation schedule, with ``P = key_rotation_days`` and ``L = jwks_max_age`` plus
:data:`~tokenward.service.SIGNING_LAG` (the longest an instance serves its JWKS before
it reloads the ring and publishes a key another instance added): a key is replaced ``P``
after it was created. ``L`` before that, a ``next`` key is added, so it is in every JWKS
cache before it signs; once ``P`` is over and the ``next`` key was added ``L`` ago, it
is promoted and the old key is retired
(still published until every token it signed has expired, then pruned). The decisions
depend only on the stored keys' creation times and the clock, so several instances
running the schedule at once agree; two promoting at the same moment promote the same
key. Each step is one method, :meth:`Housekeeper.key_tick`, that tests drive with a
frozen clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from tokenward.errors import ConfigurationError, TokenwardError
from tokenward.server._audit import audit
from tokenward.server._state import Runtime
from tokenward.service import SIGNING_LAG, RevocationFollower
from tokenward.stores import KeyState, StoreUnavailableError
from tokenward.stores.base import RevocationFeed

__all__ = ["Housekeeper"]

_DAY = 86400.0
_log = logging.getLogger("tokenward.server")


class Housekeeper:
    """Runs the server's periodic tasks; :meth:`start` after startup, :meth:`stop` at shutdown."""

    def __init__(
        self, state: Runtime, *, feed_interval: float = 1.0, key_interval: float = 60.0
    ) -> None:
        if not 0 < key_interval <= SIGNING_LAG / 2:
            # Retired keys stay published for SIGNING_LAG past their tokens: an instance
            # must reload within that, with room for a slow round.
            raise ConfigurationError(f"key_interval must be in (0, {SIGNING_LAG / 2:g}] seconds")
        self.state = state
        self.feed_interval = feed_interval
        self.key_interval = key_interval
        self.tasks: list[asyncio.Task[None]] = []
        self.follower: RevocationFollower | None = None
        """Follows the store's revocation feed while started (None for a feedless store)."""

    # -- one round of each task (also called directly by tests) ---------------------------

    async def purge(self) -> int:
        """Delete expired sessions and events; return how many rows went."""
        return await self.state.tokens.purge_expired()

    async def sync_revocations(self) -> int:
        """Apply revocation events recorded since the last sync; return how many.

        Run once at startup (so the first request already sees every revocation), and
        in a loop only for a store that has no revocation feed.
        """
        tokens = self.state.tokens
        events = await tokens.store.revocations_since(
            tokens.deny.last_seq, now=self.state.clock.now()
        )
        tokens.deny.apply_all(events)
        return len(events)

    async def key_tick(self) -> str | None:
        """Reload the key ring and take at most one step of the rotation schedule.

        Returns ``"next_added"``, ``"rotated"``, ``"pruned"`` or None (nothing to do).
        """
        keyring = self.state.tokens.keyring
        await keyring.load()
        settings = self.state.settings
        now = self.state.clock.now()
        if settings.key_rotation_days > 0:
            period = settings.key_rotation_days * _DAY
            lead = float(settings.jwks_max_age) + SIGNING_LAG
            records = keyring.records
            current = min(
                (r for r in records if r.state is KeyState.CURRENT),
                key=lambda r: (r.created_at, r.kid),
            )
            waiting = sorted(
                (r for r in records if r.state is KeyState.NEXT), key=lambda r: r.created_at
            )
            if not waiting and now >= current.created_at + period - lead:
                key = await keyring.add_next()
                audit("key_next_added", kid=key.kid)
                return "next_added"
            if (
                waiting
                and now >= current.created_at + period
                and now >= waiting[0].created_at + lead
            ):
                retired = current.kid
                key = await keyring.rotate()
                audit("key_rotated", kid=key.kid, retired=retired)
                return "rotated"
        pruned = await keyring.prune()
        if pruned:
            audit("keys_pruned", kids=pruned)
            return "pruned"
        return None

    # -- the loops ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the loops on the running event loop."""
        settings = self.state.settings
        jobs: list[tuple[str, float, Callable[[], Awaitable[Any]]]] = [
            ("purge", settings.purge_interval, self.purge),
            ("keys", self.key_interval, self.key_tick),
        ]
        feed = self._feed()
        if feed is None:
            jobs.append(("revocation_sync", self.feed_interval, self.sync_revocations))
        else:
            # The follower resumes after the service's deny list's last seq: no gap after
            # the startup sync, nothing applied twice.
            tokens = self.state.tokens
            self.follower = RevocationFollower(feed, tokens.deny, clock=self.state.clock)
            self.follower.start()
            task = self.follower.running_task
            if task is not None:  # Listed with the loops, under the name the poller had.
                task.set_name("revocation_sync")
                self.tasks.append(task)
        for name, interval, job in jobs:
            self.tasks.append(asyncio.create_task(self._every(name, interval, job), name=name))

    def _feed(self) -> RevocationFeed | None:
        """The store's revocation feed (SQLite's polling every ``feed_interval``), if any."""
        from tokenward.stores.sqlite import SQLiteStore

        store = self.state.store
        if isinstance(store, SQLiteStore):
            return store.revocation_feed(poll_interval=self.feed_interval)
        make = getattr(store, "revocation_feed", None)
        feed = make() if callable(make) else None
        return feed if isinstance(feed, RevocationFeed) else None

    async def _every(self, name: str, interval: float, job: Callable[[], Awaitable[Any]]) -> None:
        while True:
            await asyncio.sleep(interval)
            await self.run_once(name, job)

    async def run_once(self, name: str, job: Callable[[], Awaitable[Any]]) -> bool:
        """Run one round of a task; an outage or a tokenward error is logged, not raised."""
        try:
            await job()
        except StoreUnavailableError:
            self.state.metrics.store_unavailable.inc()
            _log.warning("background task %s: the store is unavailable", name)
            return False
        except TokenwardError as exc:
            _log.error("background task %s failed: %s", name, exc.code)
            return False
        return True

    async def stop(self) -> None:
        """Stop the follower, cancel the loops and wait for them to end."""
        follower, self.follower = self.follower, None
        if follower is not None:
            await follower.stop()
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.tasks.clear()
