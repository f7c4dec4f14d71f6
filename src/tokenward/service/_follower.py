"""The revocation follower: keeps a verifier's deny list in step with the store's feed.

One asyncio task reads :meth:`RevocationFeed.events` (a snapshot of unexpired events,
then live ones) and applies each event to a :class:`DenyList`. When the feed fails with
a store error it reconnects with exponential backoff (``backoff_initial`` doubling up to
``backoff_max``, with jitter so that many verifiers do not reconnect in step), asking for
the events after the last ``seq`` it applied, so nothing is missed or applied twice.

While it is disconnected the deny list is "as last known". What a verifier does then is
the ``on_disconnect`` policy (see ``docs/revocation.md``):

* ``"accept"`` (default): keep verifying against the last known deny list. Revocations
  made during the outage take effect when the feed is back (or when the tokens expire,
  whichever is first). Requests never fail because the store is down.
* ``"refuse"``: once the deny list has been out of date for longer than
  ``max_staleness`` seconds, the verifier refuses every token with
  :class:`~tokenward.service.RevocationFeedUnavailableError`. It also refuses until the
  first connection is established, since a fresh deny list knows nothing yet.

The verifier learns this from one attribute, :attr:`RevocationFollower.refuse_after`
(a clock time, or None): no call, no lock, on every request.

A connection counts as established when the feed says its subscription is live and its
snapshot delivered (it yields ``None``; see :class:`RevocationFeed`), never merely
because an attempt has not failed yet: an attempt can hang for as long as the store's
connect timeout, and the ``"refuse"`` policy must hold meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
from collections.abc import AsyncIterator, Callable
from typing import Literal

from tokenward.errors import ConfigurationError
from tokenward.service._clock import Clock, SystemClock
from tokenward.service._deny import DenyList
from tokenward.stores.base import RevocationEvent, RevocationFeed, StoreError

__all__ = ["RevocationFollower"]

_log = logging.getLogger("tokenward.revocation")

DisconnectPolicy = Literal["accept", "refuse"]


class RevocationFollower:
    """Apply a :class:`RevocationFeed` to a :class:`DenyList` in the background.

    ::

        follower = RevocationFollower(store.revocation_feed(), DenyList())
        verifier = Verifier(keys, issuer=..., audience=..., follower=follower)
        async with follower.running():
            await follower.wait_until_connected()   # optional: readiness
            ...                                     # serve requests

    Counters for metrics: ``events_applied``, ``connects``, ``disconnects`` (a working
    connection was lost), ``failed_attempts`` (connection attempts that failed), and
    ``pruned`` (deny entries dropped after expiry).
    """

    def __init__(
        self,
        feed: RevocationFeed,
        deny: DenyList | None = None,
        *,
        clock: Clock | None = None,
        on_disconnect: DisconnectPolicy = "accept",
        max_staleness: float = 30.0,
        backoff_initial: float = 0.1,
        backoff_max: float = 5.0,
        prune_interval: float = 60.0,
    ) -> None:
        if on_disconnect not in ("accept", "refuse"):
            raise ConfigurationError("on_disconnect must be 'accept' or 'refuse'")
        for name, value in (
            ("max_staleness", max_staleness),
            ("backoff_initial", backoff_initial),
            ("backoff_max", backoff_max),
            ("prune_interval", prune_interval),
        ):
            if type(value) not in (int, float) or not 0 <= value < math.inf:
                raise ConfigurationError(f"{name} must be a finite number of seconds >= 0")
        if backoff_initial > backoff_max:
            raise ConfigurationError("backoff_initial must not exceed backoff_max")
        self.feed = feed
        self.deny = deny if deny is not None else DenyList()
        self.on_disconnect: DisconnectPolicy = on_disconnect
        self.max_staleness = float(max_staleness)
        self._clock: Clock = clock or SystemClock()
        self._backoff_initial = float(backoff_initial)
        self._backoff_max = float(backoff_max)
        self._prune_interval = float(prune_interval)
        self._next_prune = -math.inf
        self._retry_delay = self._backoff_initial
        self._task: asyncio.Task[None] | None = None
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []

        self.connected = False
        """True while a connection is established (see the module docstring)."""
        self.ever_connected = False
        """True once a first connection was established."""
        self.disconnected_since: float | None = None
        """Clock time the last working connection was lost (None while connected or
        before the first connection)."""
        self.last_event_at: float | None = None
        """Clock time the last event was applied."""
        self.refuse_after: float | None = -math.inf if on_disconnect == "refuse" else None
        """For the verifier: from this clock time on, refuse every token (None: never)."""
        self.events_applied = 0
        self.connects = 0
        self.disconnects = 0
        self.failed_attempts = 0
        self.pruned = 0

    def __repr__(self) -> str:
        state = "connected" if self.connected else "disconnected"
        return (
            f"RevocationFollower({state}, on_disconnect={self.on_disconnect!r}, "
            f"last_seq={self.deny.last_seq}, events_applied={self.events_applied})"
        )

    # -- state ----------------------------------------------------------------------------

    def healthy(self, now: float | None = None) -> bool:
        """True when the deny list is current or out of date by under ``max_staleness``.

        False before the first connection: a deny list that never saw the feed knows
        nothing yet. Suitable for a readiness probe.
        """
        if self.connected:
            return True
        if self.disconnected_since is None:
            return False
        now = self._clock.now() if now is None else now
        return now < self.disconnected_since + self.max_staleness

    def staleness(self, now: float | None = None) -> float:
        """Seconds the deny list has been out of date: 0 while connected, inf before any."""
        if self.connected:
            return 0.0
        if self.disconnected_since is None:
            return math.inf
        now = self._clock.now() if now is None else now
        return max(0.0, now - self.disconnected_since)

    @property
    def retry_delay(self) -> float:
        """The backoff before the next reconnection attempt (before jitter)."""
        return self._retry_delay

    @property
    def running_task(self) -> asyncio.Task[None] | None:
        """The background task, while started."""
        return self._task

    def _mark_connected(self) -> None:
        if self.connected:
            return
        self.connected = True
        self.ever_connected = True
        self.connects += 1
        self.disconnected_since = None
        self._retry_delay = self._backoff_initial
        if self.refuse_after is not None:
            self.refuse_after = math.inf
        _log.info("revocation feed connected (from seq %d)", self.deny.last_seq)
        self._wake()

    def _mark_disconnected(self, reason: str) -> None:
        if not self.connected:
            self.failed_attempts += 1
            return
        now = self._clock.now()
        self.connected = False
        self.disconnects += 1
        self.disconnected_since = now
        if self.refuse_after is not None:
            self.refuse_after = now + self.max_staleness
        _log.warning(
            "revocation feed disconnected (%s); policy %r: %s",
            reason,
            self.on_disconnect,
            "tokens are verified against the last known deny list"
            if self.on_disconnect == "accept"
            else f"every token is refused after {self.max_staleness:g} s",
        )
        self._wake()

    def _mark_stopped(self) -> None:
        # Not a disconnect (nothing failed), but the deny list is no longer kept current,
        # so staleness, healthy() and the refuse policy count from now.
        if not self.connected:
            return
        now = self._clock.now()
        self.connected = False
        self.disconnected_since = now
        if self.refuse_after is not None:
            self.refuse_after = now + self.max_staleness
        _log.info("revocation follower stopped; the deny list is no longer updated")
        self._wake()

    # -- applying -------------------------------------------------------------------------

    def _apply(self, event: RevocationEvent) -> None:
        self.deny.apply(event)
        now = self._clock.now()
        self.events_applied += 1
        self.last_event_at = now
        if now >= self._next_prune:
            self.prune(now)
        self._wake()

    def prune(self, now: float | None = None) -> int:
        """Drop deny entries whose tokens have all expired (also done as events arrive)."""
        now = self._clock.now() if now is None else now
        self._next_prune = now + self._prune_interval
        dropped = self.deny.prune(now)
        self.pruned += dropped
        return dropped

    # -- waiting (readiness probes and tests) ---------------------------------------------

    def _wake(self) -> None:
        if not self._waiters:
            return
        pending = []
        for predicate, future in self._waiters:
            if future.done():
                continue
            if predicate():
                future.set_result(None)
            else:
                pending.append((predicate, future))
        self._waiters = pending

    async def _wait(self, predicate: Callable[[], bool]) -> None:
        if predicate():
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((predicate, future))
        await future

    async def wait_until_applied(self, seq: int) -> None:
        """Return once the event with sequence number ``seq`` (or a later one) is applied.

        Wrap it in ``asyncio.timeout`` for a bounded wait.
        """
        await self._wait(lambda: self.deny.last_seq >= seq)

    async def wait_until_connected(self, connected: bool = True) -> None:
        """Return once ``connected`` has the given value."""
        await self._wait(lambda: self.connected is connected)

    # -- running --------------------------------------------------------------------------

    def start(self) -> None:
        """Start following in a background task of the running event loop."""
        if self._task is not None and not self._task.done():
            raise ConfigurationError("the follower is running already")
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name="tokenward-revocation-follower"
        )
        self._task.add_done_callback(self._finished)

    async def stop(self) -> None:
        """Cancel the task and wait for it; re-raise an error that had ended it."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # stop() itself was cancelled: let that through.

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[RevocationFollower]:
        """``async with follower.running():`` starts, and on exit stops, the task."""
        self.start()
        try:
            yield self
        finally:
            await self.stop()

    def _finished(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            # An error that is not a store failure is a bug; stop loudly rather than
            # retry it forever. The state already says "disconnected", so the policy
            # (and healthy()) apply from here on.
            _log.error("revocation follower stopped by %s", type(error).__name__)

    async def _run(self) -> None:
        try:
            while True:
                await self._follow_once()
                self._retry_delay = min(self._retry_delay * 2, self._backoff_max)
        finally:
            self._mark_stopped()

    async def _follow_once(self) -> None:
        events: AsyncIterator[RevocationEvent | None] | None = None
        reason = "the feed ended"
        try:
            events = self.feed.events(self.deny.last_seq, now=self._clock.now())
            async for event in events:
                if event is None:
                    self._mark_connected()  # Subscribed, and the snapshot applied.
                else:
                    self._apply(event)
        except StoreError as exc:
            reason = f"{type(exc).__name__}: {exc.code}"  # never the message: it may hold a DSN
        finally:
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                # Cleaning up a broken connection may fail the same way; it is gone anyway.
                with contextlib.suppress(StoreError):
                    await aclose()
        self._mark_disconnected(reason)
        # Jitter over the upper half of the delay: spread out reconnections of many
        # verifiers without giving up most of the backoff.
        delay = self._retry_delay * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not security
        await asyncio.sleep(delay)
