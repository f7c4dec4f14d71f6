"""The revocation follower: feed events reach the verifier's deny list; disconnect policies."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any, Literal

import pytest

from tokenward.errors import ConfigurationError, ExpiredTokenError, InvalidTokenError
from tokenward.jose import Key, KeySet, jwt
from tokenward.service import (
    DenyList,
    KeyRingKeys,
    RevocationFeedUnavailableError,
    RevocationFollower,
    SessionRevokedTokenError,
    TokenPolicy,
    TokenService,
    Verifier,
)
from tokenward.stores.base import (
    RevocationEvent,
    RevocationFeed,
    RevocationKind,
    StoreUnavailableError,
)
from tokenward.stores.memory import MemoryStore
from tokenward.testing import FrozenClock

ISSUER = "https://auth.test"
AUDIENCE = "api"
NOW = 1_800_000_000
WAIT = 5.0  # bound on waits for real asynchronous events; never reached when all is well


class ScriptedFeed:
    """A real :class:`RevocationFeed` the test drives: publish events, cut, restore.

    It behaves as the protocol says (snapshot after ``since``, then live events without
    gaps or duplicates; :class:`StoreUnavailableError` when the connection is lost).
    """

    def __init__(self) -> None:
        self.log: list[RevocationEvent] = []
        self.up = True
        self.attempts = 0
        self.open = 0
        self._queues: set[asyncio.Queue[RevocationEvent | None]] = set()
        self._changed = asyncio.Condition()

    async def events(self, since: int, *, now: float) -> AsyncIterator[RevocationEvent | None]:
        async with self._changed:
            self.attempts += 1
            self._changed.notify_all()
        if not self.up:
            raise StoreUnavailableError("cannot reach redis://feed:s3cret@127.0.0.1:1")
        queue: asyncio.Queue[RevocationEvent | None] = asyncio.Queue()
        self._queues.add(queue)
        self.open += 1
        try:
            last = since
            for event in list(self.log):
                if event.seq > last:
                    last = event.seq
                    yield event
            yield None  # Subscribed, and the snapshot delivered.
            while True:
                item = await queue.get()
                if item is None:
                    raise StoreUnavailableError("lost redis://feed:s3cret@127.0.0.1:1")
                if item.seq > last:
                    last = item.seq
                    yield item
        finally:
            self._queues.discard(queue)
            self.open -= 1

    def publish(
        self, kind: RevocationKind, *, at: float = NOW, ttl: float = 900, **ids: str
    ) -> int:
        event = RevocationEvent(len(self.log) + 1, kind, at, at + ttl, **ids)
        self.log.append(event)
        for queue in self._queues:
            queue.put_nowait(event)
        return event.seq

    def cut(self) -> None:
        self.up = False
        for queue in self._queues:
            queue.put_nowait(None)

    def restore(self) -> None:
        self.up = True

    async def wait_attempts(self, count: int) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self.attempts >= count)


class BrokenFeed:
    """A feed with a bug: it raises something that is not a store error."""

    def __init__(self) -> None:
        self.snapshot: list[RevocationEvent] = []

    async def events(self, since: int, *, now: float) -> AsyncIterator[RevocationEvent | None]:
        for event in self.snapshot:
            yield event
        raise RuntimeError("bug in the feed")


class HangingFeed:
    """A feed whose connection attempts hang, then fail: a store behind a dead route."""

    def __init__(self, hang: float) -> None:
        self.hang = hang

    async def events(self, since: int, *, now: float) -> AsyncIterator[RevocationEvent | None]:
        await asyncio.sleep(self.hang)
        for _ in ():  # An async generator that fails before yielding anything.
            yield None
        raise StoreUnavailableError("connecting timed out")


def fast_follower(
    feed: RevocationFeed,
    deny: DenyList | None = None,
    *,
    clock: FrozenClock,
    on_disconnect: Literal["accept", "refuse"] = "accept",
    max_staleness: float = 30.0,
    prune_interval: float = 60.0,
) -> RevocationFollower:
    """A follower with backoff times short enough for tests (real time)."""
    return RevocationFollower(
        feed, deny, clock=clock, on_disconnect=on_disconnect, max_staleness=max_staleness,
        prune_interval=prune_interval, backoff_initial=0.001, backoff_max=0.004,
    )  # fmt: skip


def mint(key: Key, **overrides: Any) -> str:
    claims: dict[str, Any] = {
        "iss": ISSUER, "sub": "ada", "aud": AUDIENCE, "iat": NOW, "exp": NOW + 900,
        "jti": "j1", "sid": "s1", "scope": "read", "token_type": "access",
    }  # fmt: skip
    claims.update(overrides)
    return jwt.encode(claims, key, typ="at+jwt")


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture
def key() -> Key:
    return Key.generate("ES256", kid="k1")


def verifier_over(key: Key, follower: RevocationFollower, clock: FrozenClock) -> Verifier:
    return Verifier(
        KeySet([key.public_key()]), issuer=ISSUER, audience=AUDIENCE, clock=clock,
        follower=follower,
    )  # fmt: skip


def test_scripted_feed_is_a_revocation_feed() -> None:
    assert isinstance(ScriptedFeed(), RevocationFeed)


# -- the memory store's feed, end to end -------------------------------------------------------


async def memory_service(clock: FrozenClock) -> tuple[MemoryStore, TokenService]:
    store = MemoryStore()
    service = await TokenService.create(
        store, TokenPolicy(issuer=ISSUER, audience=AUDIENCE), clock=clock
    )
    return store, service


async def last_seq(store: MemoryStore, clock: FrozenClock) -> int:
    return (await store.revocations_since(0, now=clock.now()))[-1].seq


async def revoke_when_following(
    store: MemoryStore,
    service: TokenService,
    follower: RevocationFollower,
    sid: str,
    clock: FrozenClock,
) -> None:
    """Once ``follower`` is connected, revoke ``sid`` and wait until it has the event."""
    async with asyncio.timeout(WAIT):
        await follower.wait_until_connected()
    await service.revoke_session(sid)
    async with asyncio.timeout(WAIT):
        await follower.wait_until_applied(await last_seq(store, clock))


async def test_revoked_session_is_refused_by_a_following_verifier(clock: FrozenClock) -> None:
    store, service = await memory_service(clock)
    follower = fast_follower(store.revocation_feed(), DenyList(), clock=clock)
    # A separate deny list: only the feed can tell this verifier about the revocation.
    verifier = Verifier(
        KeyRingKeys(service.keyring), issuer=ISSUER, audience=AUDIENCE, clock=clock,
        follower=follower,
    )  # fmt: skip
    pair = await service.issue("ada")
    other = await service.issue("bob")
    verifier.verify(pair.access_token)
    async with follower.running():
        await revoke_when_following(store, service, follower, pair.sid, clock)
        with pytest.raises(SessionRevokedTokenError):
            verifier.verify(pair.access_token)
        assert verifier.verify(other.access_token).sub == "bob"
        assert follower.events_applied == 1
        assert follower.last_event_at == NOW
        assert verifier.stats.signature_verifications == 2  # the refusal hit the cache


async def test_deny_entries_outlive_the_verifiers_leeway(clock: FrozenClock) -> None:
    # The auth server's events expire with its own leeway (0 here); a verifier allowing
    # 60 s of skew accepts a token until exp + 60, so its session must stay denied as long.
    store, service = await memory_service(clock)
    follower = fast_follower(store.revocation_feed(), DenyList(), clock=clock)
    verifier = Verifier(
        KeyRingKeys(service.keyring), issuer=ISSUER, audience=AUDIENCE, clock=clock,
        follower=follower, leeway=60,
    )  # fmt: skip
    pair = await service.issue("ada")
    async with follower.running():
        await revoke_when_following(store, service, follower, pair.sid, clock)
        clock.advance(900 + 59)  # Past exp, within the leeway.
        follower.prune()
        with pytest.raises(SessionRevokedTokenError):
            verifier.verify(pair.access_token)
        clock.advance(2)  # Past exp + leeway: the entry may go, the token is refused anyway.
        assert follower.prune() == 1
        with pytest.raises(ExpiredTokenError):
            verifier.verify(pair.access_token)


async def test_verifier_started_after_the_revocation_refuses_from_snapshot(
    clock: FrozenClock,
) -> None:
    store, service = await memory_service(clock)
    pair = await service.issue("ada")
    await service.revoke_session(pair.sid)
    follower = fast_follower(store.revocation_feed(), clock=clock)
    verifier = Verifier(
        KeyRingKeys(service.keyring), issuer=ISSUER, audience=AUDIENCE, clock=clock,
        follower=follower,
    )  # fmt: skip
    async with follower.running():
        async with asyncio.timeout(WAIT):
            await follower.wait_until_applied(await last_seq(store, clock))
        with pytest.raises(SessionRevokedTokenError):
            verifier.verify(pair.access_token)


async def test_user_and_global_revocations_reach_the_verifier(clock: FrozenClock) -> None:
    store, service = await memory_service(clock)
    follower = fast_follower(store.revocation_feed(), clock=clock)
    verifier = Verifier(
        KeyRingKeys(service.keyring), issuer=ISSUER, audience=AUDIENCE, clock=clock,
        follower=follower,
    )  # fmt: skip
    ada = await service.issue("ada")
    bob = await service.issue("bob")
    clock.advance(5)
    async with follower.running():
        await service.password_changed("ada")
        async with asyncio.timeout(WAIT):
            await follower.wait_until_applied(await last_seq(store, clock))
        with pytest.raises(SessionRevokedTokenError):
            verifier.verify(ada.access_token)
        assert verifier.verify(bob.access_token).sub == "bob"
        await service.revoke_all()
        async with asyncio.timeout(WAIT):
            await follower.wait_until_applied(await last_seq(store, clock))
        with pytest.raises(SessionRevokedTokenError):
            verifier.verify(bob.access_token)


async def test_stop_closes_the_subscription(clock: FrozenClock) -> None:
    feed = ScriptedFeed()
    follower = fast_follower(feed, clock=clock)
    async with follower.running():
        async with asyncio.timeout(WAIT):
            await follower.wait_until_connected()
        assert feed.open == 1
        with pytest.raises(ConfigurationError):
            follower.start()
    assert feed.open == 0
    assert not follower.connected
    assert follower.running_task is None
    await follower.stop()  # stopping twice is harmless


# -- reconnection -------------------------------------------------------------------------------


async def test_reconnect_resumes_after_the_last_applied_event(clock: FrozenClock) -> None:
    feed = ScriptedFeed()
    deny = DenyList()
    follower = fast_follower(feed, deny, clock=clock)
    feed.publish(RevocationKind.SESSION, sid="s1")
    async with follower.running():
        async with asyncio.timeout(WAIT):
            await follower.wait_until_applied(1)
        feed.cut()
        async with asyncio.timeout(WAIT):
            await follower.wait_until_connected(False)
            await feed.wait_attempts(3)
        missed = feed.publish(RevocationKind.SESSION, sid="s2")
        feed.restore()
        async with asyncio.timeout(WAIT):
            await follower.wait_until_applied(missed)
        assert deny.denies({"sid": "s2"})
        assert follower.events_applied == 2  # s1 was not applied twice
        assert (follower.connects, follower.disconnects) == (2, 1)
        assert follower.failed_attempts >= 2
        live = feed.publish(RevocationKind.SESSION, sid="s3")
        async with asyncio.timeout(WAIT):
            await follower.wait_until_applied(live)
        assert deny.denies({"sid": "s3"})


async def test_backoff_doubles_to_its_cap_and_resets_on_connect(clock: FrozenClock) -> None:
    feed = ScriptedFeed()
    feed.up = False
    follower = fast_follower(feed, clock=clock)
    async with follower.running():
        async with asyncio.timeout(WAIT):
            await feed.wait_attempts(5)
        assert follower.retry_delay == 0.004
        assert not follower.ever_connected
        feed.restore()
        async with asyncio.timeout(WAIT):
            await follower.wait_until_connected()
        assert follower.retry_delay == 0.001


async def test_disconnect_is_logged_once_without_secrets(
    clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    feed = ScriptedFeed()
    follower = fast_follower(feed, clock=clock)
    with caplog.at_level(logging.INFO, logger="tokenward.revocation"):
        async with follower.running():
            async with asyncio.timeout(WAIT):
                await follower.wait_until_connected()
            feed.cut()
            async with asyncio.timeout(WAIT):
                await follower.wait_until_connected(False)
                await feed.wait_attempts(6)
            feed.restore()
            async with asyncio.timeout(WAIT):
                await follower.wait_until_connected()
    messages = [record.getMessage() for record in caplog.records]
    assert sum("disconnected" in m for m in messages) == 1
    assert sum(" connected" in m for m in messages) == 2
    assert "StoreUnavailableError" in caplog.text
    assert "s3cret" not in caplog.text


async def test_feed_that_ends_is_reconnected(clock: FrozenClock, key: Key) -> None:
    class EndingFeed(ScriptedFeed):
        async def events(self, since: int, *, now: float) -> AsyncIterator[RevocationEvent | None]:
            async with self._changed:
                self.attempts += 1
                self._changed.notify_all()
            for event in self.log:
                if event.seq > since:
                    yield event
            yield None

    feed = EndingFeed()
    feed.publish(RevocationKind.SESSION, sid="s1")
    follower = fast_follower(feed, clock=clock)
    async with follower.running():
        async with asyncio.timeout(WAIT):
            await feed.wait_attempts(3)
    assert follower.events_applied == 1


async def test_unexpected_error_stops_the_follower_loudly(
    clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    follower = fast_follower(BrokenFeed(), clock=clock, on_disconnect="refuse")
    follower.start()
    task = follower.running_task
    assert task is not None
    with caplog.at_level(logging.ERROR, logger="tokenward.revocation"):
        async with asyncio.timeout(WAIT):
            await asyncio.wait([task])
    assert "RuntimeError" in caplog.text
    assert not follower.connected
    assert not follower.healthy()
    with pytest.raises(RuntimeError):
        await follower.stop()


# -- disconnect policies --------------------------------------------------------------------------


async def test_accept_policy_keeps_verifying_with_last_known_deny_list(
    clock: FrozenClock, key: Key
) -> None:
    feed = ScriptedFeed()
    follower = fast_follower(feed, clock=clock, max_staleness=30)
    verifier = verifier_over(key, follower, clock)
    revoked, kept = mint(key, sid="gone"), mint(key, sid="kept", jti="j2")
    feed.publish(RevocationKind.SESSION, sid="gone")
    async with follower.running():
        async with asyncio.timeout(WAIT):
            await follower.wait_until_applied(1)
        assert follower.healthy()
        feed.cut()
        async with asyncio.timeout(WAIT):
            await follower.wait_until_connected(False)
        assert follower.disconnected_since == NOW
        clock.advance(600)
        assert verifier.verify(kept).sid == "kept"
        with pytest.raises(SessionRevokedTokenError):
            verifier.verify(revoked)
        assert not follower.healthy()
        assert follower.staleness() == 600


async def test_refuse_policy_refuses_before_first_connection(clock: FrozenClock, key: Key) -> None:
    feed = ScriptedFeed()
    feed.up = False
    follower = fast_follower(feed, clock=clock, on_disconnect="refuse")
    verifier = verifier_over(key, follower, clock)
    token = mint(key)
    with pytest.raises(RevocationFeedUnavailableError) as caught:
        verifier.verify(token)
    assert caught.value.code == "revocation_unavailable"
    assert isinstance(caught.value, InvalidTokenError)
    assert not follower.healthy()
    assert follower.staleness() == float("inf")
    async with follower.running():
        feed.restore()
        async with asyncio.timeout(WAIT):
            await follower.wait_until_connected()
        assert verifier.verify(token).sub == "ada"


async def test_a_hanging_connection_attempt_is_not_a_connection(
    clock: FrozenClock, key: Key
) -> None:
    # An attempt that has not failed yet may be hanging on a dead route: the deny list
    # learns nothing meanwhile, so the refuse policy must hold until the feed says its
    # snapshot is delivered.
    # Longer than the one second after which an attempt used to count as connected.
    follower = fast_follower(HangingFeed(1.2), clock=clock, on_disconnect="refuse")
    verifier = verifier_over(key, follower, clock)
    async with follower.running():
        async with asyncio.timeout(WAIT):
            while follower.failed_attempts < 1:
                await asyncio.sleep(0.05)
        assert (follower.connected, follower.ever_connected, follower.connects) == (False, False, 0)
        assert follower.disconnects == 0
        assert not follower.healthy()
        with pytest.raises(RevocationFeedUnavailableError):
            verifier.verify(mint(key))


async def test_a_quiet_feed_counts_as_connected_once_its_snapshot_is_in(clock: FrozenClock) -> None:
    follower = fast_follower(ScriptedFeed(), clock=clock, on_disconnect="refuse")
    async with follower.running():
        async with asyncio.timeout(WAIT):
            await follower.wait_until_connected()
        assert follower.events_applied == 0
        assert follower.healthy()
        assert follower.refuse_after == float("inf")


async def test_refuse_policy_refuses_after_max_staleness(
    clock: FrozenClock, key: Key, caplog: pytest.LogCaptureFixture
) -> None:
    feed = ScriptedFeed()
    follower = fast_follower(feed, clock=clock, on_disconnect="refuse", max_staleness=30)
    verifier = verifier_over(key, follower, clock)
    token = mint(key)
    async with follower.running():
        async with asyncio.timeout(WAIT):
            await follower.wait_until_connected()
        verifier.verify(token)  # cached from here on
        feed.cut()
        async with asyncio.timeout(WAIT):
            await follower.wait_until_connected(False)
        clock.advance(29.9)
        assert verifier.verify(token).sub == "ada"
        assert follower.healthy()
        clock.advance(0.1)
        assert not follower.healthy()
        with caplog.at_level(logging.ERROR, logger="tokenward.verifier"):
            for _ in range(20):
                with pytest.raises(RevocationFeedUnavailableError):
                    verifier.verify(token)
        refusals = [r for r in caplog.records if r.name == "tokenward.verifier"]
        assert len(refusals) == 1  # logged once per outage, not per request
        assert verifier.stats.refused_unavailable == 20
        feed.restore()
        async with asyncio.timeout(WAIT):
            await follower.wait_until_connected()
        assert verifier.verify(token).sub == "ada"


async def test_refuse_policy_counts_staleness_from_stop(clock: FrozenClock, key: Key) -> None:
    follower = fast_follower(ScriptedFeed(), clock=clock, on_disconnect="refuse", max_staleness=30)
    verifier = verifier_over(key, follower, clock)
    async with follower.running():
        async with asyncio.timeout(WAIT):
            await follower.wait_until_connected()
    assert verifier.verify(mint(key)).sub == "ada"
    clock.advance(30)
    with pytest.raises(RevocationFeedUnavailableError):
        verifier.verify(mint(key))


# -- pruning and configuration ------------------------------------------------------------------


async def test_expired_entries_are_pruned_as_events_arrive(clock: FrozenClock) -> None:
    feed = ScriptedFeed()
    deny = DenyList()
    follower = fast_follower(feed, deny, clock=clock, prune_interval=60)
    async with follower.running():
        for i in range(10):
            feed.publish(RevocationKind.SESSION, sid=f"old{i}", ttl=100)
        async with asyncio.timeout(WAIT):
            await follower.wait_until_applied(10)
        assert len(deny) == 10
        clock.advance(100)
        seq = feed.publish(RevocationKind.SESSION, sid="new", at=NOW + 100)
        async with asyncio.timeout(WAIT):
            await follower.wait_until_applied(seq)
        assert len(deny) == 1
        assert follower.pruned == 10
        assert deny.denies({"sid": "new"})


def test_prune_on_demand(clock: FrozenClock) -> None:
    deny = DenyList()
    deny.apply(RevocationEvent(1, RevocationKind.SESSION, NOW, NOW + 10, sid="s"))
    follower = RevocationFollower(ScriptedFeed(), deny, clock=clock)
    clock.advance(10)
    assert follower.prune() == 1
    assert len(deny) == 0


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"on_disconnect": "ignore"}, id="policy"),
        pytest.param({"max_staleness": -1}, id="negative-staleness"),
        pytest.param({"backoff_initial": 10, "backoff_max": 1}, id="backoff-order"),
        pytest.param({"prune_interval": float("inf")}, id="infinite-prune-interval"),
    ],
)
def test_follower_configuration_is_checked(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        RevocationFollower(ScriptedFeed(), **options)


def test_verifier_deny_list_must_be_the_followers(key: Key) -> None:
    follower = RevocationFollower(ScriptedFeed())
    with pytest.raises(ConfigurationError):
        Verifier(
            KeySet([key.public_key()]), issuer=ISSUER, audience=AUDIENCE,
            deny=DenyList(), follower=follower,
        )  # fmt: skip
    verifier = Verifier(
        KeySet([key.public_key()]), issuer=ISSUER, audience=AUDIENCE, follower=follower
    )
    assert verifier.deny is follower.deny
