"""The three modes, and the driver that walks the workload through one of them.

* :class:`SessionMode` (server sessions): login stores an opaque random session id in
  the store; every request looks it up there (:class:`SessionLookup`, one read).
* :class:`JwtMode` (JWT): login issues an access/refresh pair with
  :class:`~tokenward.service.TokenService`; every request is verified by a resource
  server's :class:`~tokenward.service.Verifier` with no store I/O (its verified-token
  cache makes a repeat cost a dictionary lookup); when the access token has expired,
  the client refreshes it first (one atomic store call).
* :class:`JwtFeedMode` (JWT + revocation feed): the same, with the verifier following
  the store's revocation feed through a :class:`~tokenward.service.RevocationFollower`,
  and revocation probes that measure how long a revocation takes to be refused.

A request's outcome is :data:`SERVED`, :data:`REFUSED` (the credential was refused) or
:data:`FAILED` (the store was unavailable). ``request`` returns the outcome directly
when it needs no I/O, and an awaitable otherwise, so the no-I/O path of the JWT modes
pays for no coroutine.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import secrets
import time
from collections.abc import Coroutine, Sequence
from typing import Any

from tokenward.bench._progress import Progress
from tokenward.bench._stats import FAILED, REFUSED, SERVED
from tokenward.bench._workload import Workload
from tokenward.errors import InvalidTokenError, TokenwardError
from tokenward.service import (
    DenyList,
    KeyRingKeys,
    RevocationFollower,
    SessionRevokedTokenError,
    TokenService,
    Verifier,
)
from tokenward.stores import NewSession, SessionStore, StoreError
from tokenward.testing import FrozenClock

__all__ = [
    "PROBE_TIMEOUT",
    "SESSION_ID_BYTES",
    "Driver",
    "JwtFeedMode",
    "JwtMode",
    "Mode",
    "SessionLookup",
    "SessionMode",
]

SESSION_ID_BYTES = 32
"""Random bytes in a server session id (43 characters in base64url)."""
PROBE_TIMEOUT = 15.0
"""Seconds a revocation probe waits for the verifier to refuse before giving up."""
_FEED_DOWN_TIMEOUT = 10.0
_FEED_UP_TIMEOUT = 20.0

Outcome = int | Coroutine[Any, Any, int]


class SessionLookup:
    """Find the user behind a server session id: one read in the store, per request.

    It reads with the store's own client, through the store's ``get_session``, so the
    read is counted in the store's ``operations`` like every other round trip: a dict
    lookup (memory), one ``SELECT ... WHERE sid = ?`` on the primary key (SQLite,
    PostgreSQL) or one ``HMGET`` of the session's hash (Redis). A session framework
    does the same: load the session row, check it has not expired or been revoked.
    It does not slide the session's expiry, which would add a write per request.
    """

    __slots__ = ("_get",)

    def __init__(self, store: SessionStore) -> None:
        self._get = store.get_session

    async def __call__(self, session_id: str, now: float) -> str | None:
        """The session's user, or None when it is unknown, expired or revoked."""
        record = await self._get(session_id)
        if record is None or not record.active(now):
            return None
        return record.sub


class Mode:
    """What every mode counts; subclasses implement :meth:`login` and :meth:`request`."""

    key = ""
    label = ""

    def __init__(self) -> None:
        self.logins = 0
        self.lookups = 0
        self.refreshes = 0
        self.refresh_failures = 0
        self.revocations = 0
        self.credential_bytes = 0
        self.delays: list[float | None] = []

    async def login(self, users: int) -> None:
        """Log every user in (at the clock's current time)."""
        raise NotImplementedError

    def request(self, user: int, t: float) -> Outcome:
        """One request of ``user`` at simulated time ``t``."""
        raise NotImplementedError

    async def begin(self) -> None:
        """Called before logins (start background tasks)."""

    async def end(self) -> None:
        """Called after the last request (wait for probes, stop background tasks)."""

    def probe_points(self, total: int) -> Sequence[int]:
        """Request indices before which :meth:`probe` runs (none by default)."""
        return ()

    def probe(self, number: int) -> None:
        """Start revocation probe ``number`` in the background."""

    async def store_down(self) -> None:
        """Called right after the store was stopped (the outage case)."""

    async def store_up(self) -> None:
        """Called right after the store came back (the outage case)."""

    def notes(self) -> dict[str, Any]:
        """Mode-specific figures for the report."""
        return {}


class SessionMode(Mode):
    """Server sessions: an opaque id per login, looked up in the store on every request."""

    key = "sessions"
    label = "server sessions"

    def __init__(self, store: SessionStore, clock: FrozenClock, *, prefix: str = "s") -> None:
        super().__init__()
        self._store = store
        self._clock = clock
        self._lookup = SessionLookup(store)
        self._prefix = prefix
        self._sids: list[str] = []
        self._length = 0

    async def login(self, users: int) -> None:
        now = self._clock.now()
        for user in range(users):
            sid = secrets.token_urlsafe(SESSION_ID_BYTES)
            # The session row needs a refresh hash; a server session has no refresh
            # token, so it is the digest of nothing anyone holds.
            await self._store.create_session(
                NewSession(
                    sid=sid,
                    sub=f"{self._prefix}-{user}",
                    created_at=now,
                    idle_expires_at=now + 14 * 86400.0,
                    absolute_expires_at=now + 30 * 86400.0,
                    refresh_hash=hashlib.sha256(secrets.token_bytes(32)).digest(),
                    client_id="bench",
                )
            )
            self.logins += 1
            self._sids.append(sid)
        self._length = len(self._sids[0]) if self._sids else 0

    def request(self, user: int, t: float) -> Outcome:
        return self._request(user, t)

    async def _request(self, user: int, t: float) -> int:
        self.lookups += 1
        try:
            sub = await self._lookup(self._sids[user], t)
        except StoreError:
            return FAILED
        if sub is None:
            return REFUSED
        self.credential_bytes += self._length
        return SERVED


class JwtMode(Mode):
    """JWT: verify with no store I/O; refresh (one store call) when the token expired."""

    key = "jwt"
    label = "JWT"

    def __init__(
        self,
        service: TokenService,
        clock: FrozenClock,
        *,
        users: int,
        prefix: str = "j",
        follower: RevocationFollower | None = None,
    ) -> None:
        super().__init__()
        self._service = service
        self._clock = clock
        self._prefix = prefix
        policy = service.policy
        # A resource server's verifier: the auth server's keys, its own cache and (in
        # the feed mode) its own deny list, never the service's. The cache holds every
        # user's token, as a resource server's cache would be sized.
        self.verifier = Verifier(
            KeyRingKeys(service.keyring, clock=clock),
            issuer=policy.issuer,
            audience=policy.audience,
            leeway=policy.leeway,
            clock=clock,
            follower=follower,
            cache_size=max(10_000, 2 * users),
        )
        self._verify = self.verifier.verify
        self._now = clock.now
        self._access: list[str] = []
        self._refresh: list[str] = []
        self._expires: list[float] = []
        self._inflight: list[asyncio.Future[bool] | None] = []

    async def login(self, users: int) -> None:
        for user in range(users):
            before = self._clock.now()
            pair = await self._service.issue(f"{self._prefix}-{user}", scope="api")
            self.logins += 1
            self._access.append(pair.access_token)
            self._refresh.append(pair.refresh_token)
            self._expires.append(math.floor(before) + pair.expires_in)
            self._inflight.append(None)

    def request(self, user: int, t: float) -> Outcome:
        if self._now() >= self._expires[user]:
            return self._refreshed(user)
        token = self._access[user]
        try:
            self._verify(token)
        except InvalidTokenError:
            return REFUSED
        self.credential_bytes += len(token)
        return SERVED

    async def _refreshed(self, user: int) -> int:
        pending = self._inflight[user]
        if pending is not None:
            # The client refreshes once, and every request waiting for it uses the result.
            ok = await asyncio.shield(pending)
        else:
            ok = await self._refresh_now(user)
        if not ok:
            return FAILED
        token = self._access[user]
        try:
            self._verify(token)
        except InvalidTokenError:
            return REFUSED
        self.credential_bytes += len(token)
        return SERVED

    async def _refresh_now(self, user: int) -> bool:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._inflight[user] = future
        before = self._clock.now()
        ok = False
        try:
            self.refreshes += 1
            pair = await self._service.refresh(self._refresh[user])
        except (StoreError, TokenwardError):
            self.refresh_failures += 1
        else:
            self._access[user] = pair.access_token
            self._refresh[user] = pair.refresh_token
            self._expires[user] = math.floor(before) + pair.expires_in
            ok = True
        finally:
            self._inflight[user] = None
            future.set_result(ok)
        # A refresh costs two signatures and a store call, and with every user logged
        # in at once, they all come due together: let the event loop turn after each,
        # so the revocation feed is not held up behind a thousand of them.
        await asyncio.sleep(0)
        return ok


class JwtFeedMode(JwtMode):
    """JWT with the revocation feed on, and revocation probes during the run.

    A probe logs a user in, has the verifier accept its token, revokes the session,
    and times from ``revoke_session`` returning until the verifier refuses the token.
    The probe verifies with its own :class:`Verifier` sharing the follower (and so the
    very deny list the workload's verifier consults), whose clock stays at the probe's
    login: a fast run moves simulated time so quickly that the probe's token could
    otherwise expire before a one-second SQLite poll, and be refused for that instead.
    """

    key = "jwt_feed"
    label = "JWT + revocation feed"

    def __init__(
        self,
        service: TokenService,
        clock: FrozenClock,
        feed: Any,
        *,
        users: int,
        probes: int,
        prefix: str = "f",
        probe_timeout: float = PROBE_TIMEOUT,
    ) -> None:
        # The follower keeps real time: a deny entry is kept until its tokens expire,
        # and a fast run passes simulated minutes between two one-second polls, which
        # would drop (prune) a revocation before the probe that made it saw it refused.
        # The simulated clock starts at the real time and only runs ahead of it, so on
        # real time no entry is dropped during a run.
        self.follower = RevocationFollower(feed, DenyList())
        super().__init__(service, clock, users=users, prefix=prefix, follower=self.follower)
        self._probes = probes
        self._probe_timeout = probe_timeout
        self._tasks: list[asyncio.Task[None]] = []
        self._running = False
        self._outage: list[float | None] = [None, None]
        self._outage_seen = False

    async def begin(self) -> None:
        self.follower.start()
        self._running = True
        try:
            await asyncio.wait_for(self.follower.wait_until_connected(), 30)
        except TimeoutError:
            raise StoreError("the revocation feed did not connect within 30 s") from None

    async def end(self) -> None:
        if self._tasks:
            await asyncio.wait(self._tasks)
        self._tasks.clear()
        if self._running:
            self._running = False
            await self.follower.stop()

    async def store_down(self) -> None:
        # A simulated outage is over in a fraction of a second, quicker than a feed
        # notices (SQLite polls once a second): wait, in real time, until the follower
        # has lost the feed, so that the outage shows what it does then.
        self._outage_seen = True
        self._outage[0] = await self._until_connected(False, _FEED_DOWN_TIMEOUT)

    async def store_up(self) -> None:
        # And until it is following again (its backoff grows up to 5 s while down).
        self._outage[1] = await self._until_connected(True, _FEED_UP_TIMEOUT)

    async def _until_connected(self, connected: bool, timeout: float) -> float | None:
        began = time.perf_counter()
        try:
            await asyncio.wait_for(self.follower.wait_until_connected(connected), timeout)
        except TimeoutError:
            return None
        return time.perf_counter() - began

    def probe_points(self, total: int) -> Sequence[int]:
        count = max(0, self._probes)
        return [total * (j + 1) // (count + 1) for j in range(count)]

    def probe(self, number: int) -> None:
        self._tasks.append(asyncio.ensure_future(self._probe(number)))

    async def _probe(self, number: int) -> None:
        service = self._service
        issued_at = self._clock.now()
        try:
            pair = await service.issue(f"probe-{number}", scope="api")
            self.revocations += 1  # a probe's login is counted with its revocation
            verifier = Verifier(
                KeyRingKeys(service.keyring, clock=self._clock),
                issuer=service.policy.issuer,
                audience=service.policy.audience,
                clock=FrozenClock(issued_at),
                follower=self.follower,
            )
            verifier.verify(pair.access_token)
            seen = self.follower.deny.last_seq
            self.revocations += 1
            await service.revoke_session(pair.sid, reason="bench")
        except TokenwardError:
            self.delays.append(None)
            return
        self.delays.append(await self._until_refused(verifier, pair.access_token, seen))

    async def _until_refused(self, verifier: Verifier, token: str, seen: int) -> float | None:
        revoked = time.perf_counter()
        deadline = revoked + self._probe_timeout
        while True:
            try:
                verifier.verify(token)
            except SessionRevokedTokenError:
                return time.perf_counter() - revoked
            except InvalidTokenError:
                return None
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return None
            try:
                await asyncio.wait_for(self.follower.wait_until_applied(seen + 1), remaining)
            except TimeoutError:
                return None
            seen = self.follower.deny.last_seq

    def notes(self) -> dict[str, Any]:
        follower = self.follower
        feed = follower.feed
        notes: dict[str, Any] = {
            "feed": type(feed).__name__,
            "events_applied": follower.events_applied,
            "connects": follower.connects,
            "disconnects": follower.disconnects,
            "failed_attempts": follower.failed_attempts,
        }
        interval = getattr(feed, "poll_interval", None)
        if interval is not None:
            notes["poll_interval_s"] = interval
        polls = getattr(feed, "polls", None)
        if polls is not None:
            notes["feed_polls"] = polls
        if self._outage_seen:
            lost, back = self._outage
            notes["feed_lost_after_s"] = None if lost is None else round(lost, 3)
            notes["feed_back_after_s"] = None if back is None else round(back, 3)
        return notes


class Driver:
    """Walk requests ``k0 .. k1 - 1`` of a workload through a mode, ``concurrency`` at once.

    Workers take the next request index from one shared counter, so requests start in
    time order; the clock moves forward to each request's time as it starts. Every
    ``stride``-th request's latency is kept. Outcome counts go to the ``counts`` list
    given to :meth:`run` (``[served, refused, failed]``).
    """

    def __init__(
        self,
        workload: Workload,
        clock: FrozenClock,
        start: float,
        *,
        concurrency: int,
        stride: int,
        progress: Progress,
    ) -> None:
        self.workload = workload
        self.clock = clock
        self.start = start
        self.concurrency = max(1, concurrency)
        self.stride = max(1, stride)
        self.progress = progress
        self.samples: list[float] = []
        self.first_failed: int | None = None
        self.last_failed: int | None = None

    async def run(self, mode: Mode, k0: int, k1: int, counts: list[int], *, done: int = 0) -> None:
        """Run requests ``k0 .. k1 - 1``; ``done`` is the progress already made."""
        users = self.workload.users
        inverse = 1.0 / users
        interval = self.workload.interval
        start = self.start
        clock = self.clock
        stride = self.stride
        samples = self.samples
        request = mode.request
        progress = self.progress
        perf = time.perf_counter
        shared = [k0]
        offset = done - k0

        async def worker() -> None:
            while True:
                k = shared[0]
                if k >= k1:
                    return
                shared[0] = k + 1
                i, user = divmod(k, users)
                t = start + (i + user * inverse) * interval
                if t > clock.now():
                    clock.set(t)
                if k % stride:
                    outcome = request(user, t)
                    if not isinstance(outcome, int):
                        outcome = await outcome
                else:
                    began = perf()
                    outcome = request(user, t)
                    if not isinstance(outcome, int):
                        outcome = await outcome
                    samples.append(perf() - began)
                counts[outcome] += 1
                if outcome == FAILED:
                    self._failed(k)
                if not k & 63:
                    progress.update(k + offset)
                    await asyncio.sleep(0)

        await asyncio.gather(*(worker() for _ in range(self.concurrency)))

    def _failed(self, k: int) -> None:
        # Requests finish out of order when several are in flight: keep the extremes.
        if self.first_failed is None or k < self.first_failed:
            self.first_failed = k
        if self.last_failed is None or k > self.last_failed:
            self.last_failed = k
