"""The token lifecycle on every backend: issue, verify, rotate, replay, reuse, revoke, slide."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.service.conftest import AUDIENCE, ISSUER
from tokenward.errors import ConfigurationError, ExpiredTokenError, MalformedTokenError
from tokenward.jose import jwt
from tokenward.service import (
    SIGNING_LAG,
    Client,
    RefreshReuseError,
    SessionExpiredError,
    SessionRevokedError,
    SessionRevokedTokenError,
    TokenPolicy,
    TokenService,
    UnknownSessionError,
    WrongTokenTypeError,
)
from tokenward.stores.base import RevocationKind, SessionStore
from tokenward.testing import FrozenClock


def ops(store: SessionStore) -> int:
    count: int = getattr(store, "operations")  # noqa: B009 - every backend counts round trips
    return count


async def generation(service: TokenService, sid: str) -> int:
    record = await service.store.get_session(sid)
    assert record is not None
    return record.generation


async def test_issue_mints_rfc9068_access_token(service: TokenService) -> None:
    pair = await service.issue(
        "ada", scope="read write", client=Client("web", "Firefox/140", "127.0.0.1")
    )
    header = jwt.inspect_unverified(pair.access_token).header
    assert header["typ"] == "at+jwt"
    assert header["kid"] == service.keyring.current.kid
    claims = service.verify_access(pair.access_token)
    assert (claims.sub, claims.sid, claims.client_id) == ("ada", pair.sid, "web")
    assert claims.scopes == {"read", "write"}
    raw = claims.claims
    assert raw["iss"] == ISSUER
    assert raw["aud"] == AUDIENCE
    assert raw["token_type"] == "access"
    assert raw["exp"] - raw["iat"] == 900 == pair.expires_in
    assert {"jti", "nbf", "iat", "session_exp"} <= raw.keys()
    refresh = jwt.inspect_unverified(pair.refresh_token)
    assert refresh.header["typ"] == "rt+jwt"
    assert refresh.claims["token_type"] == "refresh"
    assert refresh.claims["gen"] == 0
    assert refresh.claims["aud"] == ISSUER


async def test_store_keeps_no_token(service: TokenService) -> None:
    pair = await service.issue("ada")
    await service.refresh(pair.refresh_token)
    jti = jwt.inspect_unverified(pair.refresh_token).claims["jti"]
    record = await service.store.get_session(pair.sid)
    assert record is not None
    dumped = repr(record)
    assert jti not in dumped
    assert pair.refresh_token not in dumped


async def test_verify_access_does_no_store_io(service: TokenService) -> None:
    pair = await service.issue("ada")
    before = ops(service.store)
    for _ in range(100):
        service.verify_access(pair.access_token)
    assert ops(service.store) == before


async def test_rotation_is_one_store_operation(service: TokenService, clock: FrozenClock) -> None:
    pair = await service.issue("ada")
    clock.advance(60)
    before = ops(service.store)
    successor = await service.refresh(pair.refresh_token)
    assert ops(service.store) == before + 1
    assert successor.refresh_token != pair.refresh_token
    assert await generation(service, pair.sid) == 1
    record = await service.store.get_session(pair.sid)
    assert record is not None
    assert record.last_used_at == clock.now()
    assert record.idle_expires_at == clock.now() + service.policy.idle_timeout
    assert service.verify_access(successor.access_token).sid == pair.sid


async def test_garbage_never_reaches_the_store(service: TokenService) -> None:
    before = ops(service.store)
    with pytest.raises(MalformedTokenError):
        await service.refresh("not.a.token")
    assert ops(service.store) == before


async def test_replay_in_grace_returns_identical_pair(
    service: TokenService, clock: FrozenClock
) -> None:
    pair = await service.issue("ada")
    clock.advance(60)
    first = await service.refresh(pair.refresh_token)
    clock.advance(service.policy.reuse_grace - 1)
    again = await service.refresh(pair.refresh_token)
    assert again == first
    assert await generation(service, pair.sid) == 1
    record = await service.store.get_session(pair.sid)
    assert record is not None
    assert record.revoked_at is None


async def test_concurrent_refreshes_share_one_successor(
    service: TokenService, clock: FrozenClock
) -> None:
    pair = await service.issue("ada")
    clock.advance(60)
    results = await asyncio.gather(*(service.refresh(pair.refresh_token) for _ in range(50)))
    assert len({(r.access_token, r.refresh_token) for r in results}) == 1
    assert await generation(service, pair.sid) == 1
    assert await service.list_sessions("ada") != []


async def test_previous_token_after_grace_is_reuse(
    service: TokenService, clock: FrozenClock
) -> None:
    pair = await service.issue("ada")
    clock.advance(60)
    successor = await service.refresh(pair.refresh_token)
    clock.advance(service.policy.reuse_grace)
    with pytest.raises(RefreshReuseError) as caught:
        await service.refresh(pair.refresh_token)
    assert caught.value.code == "refresh_reused"
    events = await service.store.revocations_since(0, now=clock.now())
    assert [(e.kind, e.sid) for e in events] == [(RevocationKind.SESSION, pair.sid)]
    # The whole session is gone: the thief's and the user's tokens alike.
    with pytest.raises(SessionRevokedError):
        await service.refresh(successor.refresh_token)
    with pytest.raises(SessionRevokedTokenError):
        service.verify_access(successor.access_token)


async def test_older_generation_is_reuse_within_grace(
    service: TokenService, clock: FrozenClock
) -> None:
    pair = await service.issue("ada")
    clock.advance(1)
    second = await service.refresh(pair.refresh_token)
    clock.advance(1)
    await service.refresh(second.refresh_token)
    clock.advance(1)
    with pytest.raises(RefreshReuseError):
        await service.refresh(pair.refresh_token)


async def test_wrong_token_types_are_refused(service: TokenService) -> None:
    pair = await service.issue("ada")
    with pytest.raises(WrongTokenTypeError) as as_refresh:
        await service.refresh(pair.access_token)
    assert as_refresh.value.code == "wrong_token_type"
    with pytest.raises(WrongTokenTypeError):
        service.verify_access(pair.refresh_token)


async def test_expired_refresh_token(service: TokenService, clock: FrozenClock) -> None:
    pair = await service.issue("ada")
    clock.advance(service.policy.refresh_lifetime)
    with pytest.raises(ExpiredTokenError) as caught:
        await service.refresh(pair.refresh_token)
    assert caught.value.code == "token_expired"


async def test_unknown_session(
    store: SessionStore, policy: TokenPolicy, clock: FrozenClock
) -> None:
    # A refresh token that outlives its purged session (idle timeout < refresh lifetime).
    short = TokenPolicy(
        issuer=policy.issuer, audience=policy.audience, idle_timeout=60, refresh_lifetime=3600
    )
    service = await TokenService.create(store, short, clock=clock)
    pair = await service.issue("bob")
    clock.advance(61)
    assert await service.purge_expired() == 1
    assert await store.get_session(pair.sid) is None
    with pytest.raises(UnknownSessionError) as caught:
        await service.refresh(pair.refresh_token)
    assert caught.value.code == "session_unknown"


async def test_idle_expiry_and_absolute_cap(store: SessionStore, clock: FrozenClock) -> None:
    policy = TokenPolicy(
        issuer=ISSUER,
        audience=AUDIENCE,
        access_lifetime=600,
        refresh_lifetime=7200,
        idle_timeout=3600,
        absolute_lifetime=4 * 3600,
    )
    service = await TokenService.create(store, policy, clock=clock)
    pair = await service.issue("ada")
    start = clock.now()
    # Busy user: refresh every 50 minutes; the session slides but stops at 4 hours.
    while clock.now() + 3000 < start + 4 * 3600:
        clock.advance(3000)
        pair = await service.refresh(pair.refresh_token)
        refresh_exp = jwt.inspect_unverified(pair.refresh_token).claims["exp"]
        assert refresh_exp <= start + 4 * 3600
    clock.set(start + 4 * 3600)
    with pytest.raises((SessionExpiredError, ExpiredTokenError)):
        await service.refresh(pair.refresh_token)
    # An idle user: the session ends after an hour without refresh.
    idle = await service.issue("bob")
    clock.advance(3600)
    with pytest.raises(SessionExpiredError) as caught:
        await service.refresh(idle.refresh_token)
    assert caught.value.code == "session_expired"


async def test_extend_slides_past_half_life_only(service: TokenService, clock: FrozenClock) -> None:
    pair = await service.issue("ada", claims={"tenant": "t1"})
    clock.advance(449)
    assert service.extend(pair.access_token) is None
    clock.advance(1)
    fresh = service.extend(pair.access_token)
    assert fresh is not None
    claims = service.verify_access(fresh).claims
    assert claims["exp"] == int(clock.now()) + 900
    assert claims["sid"] == pair.sid
    assert claims["tenant"] == "t1"


async def test_extend_never_passes_absolute_expiry(store: SessionStore, clock: FrozenClock) -> None:
    policy = TokenPolicy(
        issuer=ISSUER,
        audience=AUDIENCE,
        access_lifetime=600,
        refresh_lifetime=1200,
        idle_timeout=1000,
        absolute_lifetime=1000,
    )
    service = await TokenService.create(store, policy, clock=clock)
    pair = await service.issue("ada")
    session_exp = int(clock.now()) + 1000
    clock.advance(500)
    fresh = service.extend(pair.access_token)
    assert fresh is not None
    assert service.verify_access(fresh).exp == session_exp
    clock.advance(400)
    assert service.extend(fresh) is None


@pytest.mark.parametrize("how", ["session", "user", "password", "all"])
async def test_revocation_stops_access_and_refresh(service: TokenService, how: str) -> None:
    pair = await service.issue("ada")
    other = await service.issue("bob")
    service.clock.advance(1)  # type: ignore[attr-defined]
    if how == "session":
        assert await service.revoke_session(pair.sid)
    elif how == "user":
        assert await service.revoke_user("ada") == 1
    elif how == "password":
        assert await service.password_changed("ada") == 1
    else:
        assert await service.revoke_all() == 2
    with pytest.raises(SessionRevokedTokenError):
        service.verify_access(pair.access_token)
    with pytest.raises(SessionRevokedError):
        await service.refresh(pair.refresh_token)
    assert await service.list_sessions("ada") == []
    if how == "all":
        with pytest.raises(SessionRevokedTokenError):
            service.verify_access(other.access_token)
    else:
        assert service.verify_access(other.access_token).sub == "bob"


@pytest.mark.parametrize("how", ["user", "password"])
async def test_a_users_revocation_denies_tokens_issued_in_the_same_second(
    service: TokenService, clock: FrozenClock, how: str
) -> None:
    # The USER event's cutoff is a whole second; the SESSION events the store records
    # for each revoked session cover that second, in this process at once too.
    pair = await service.issue("ada")
    clock.advance(0.5)
    if how == "user":
        assert await service.revoke_user("ada") == 1
    else:
        assert await service.password_changed("ada") == 1
    with pytest.raises(SessionRevokedTokenError):
        service.verify_access(pair.access_token)
    # A session opened after the revocation, in the same second, is not affected.
    later = await service.issue("ada")
    assert service.verify_access(later.access_token).sub == "ada"


@pytest.mark.parametrize(
    "subject",
    ["", "a\x00b", "a\nb", "\ud800", "s" * 256, "\u00e9" * 128],
    ids=["empty", "nul", "newline", "lone-surrogate", "256-octets", "256-utf8-octets"],
)
async def test_subjects_every_store_and_token_can_carry(
    service: TokenService, subject: str
) -> None:
    with pytest.raises(ConfigurationError):
        await service.issue(subject)
    for fits in ("s" * 255, "\u00e9" * 127, "ada@example.com"):
        pair = await service.issue(fits)
        assert (await service.refresh(pair.refresh_token)).sid == pair.sid


async def test_user_agents_are_kept_as_every_store_can_keep_them(service: TokenService) -> None:
    # Metadata, shown in session lists: the same text on every backend, never a store error.
    for agent, kept in (("a\x00b", "a\ufffdb"), ("\ud800x", "?x"), ("x" * 600, "x" * 512)):
        pair = await service.issue("ada", client=Client("web", user_agent=agent))
        session = await service.store.get_session(pair.sid)
        assert session is not None
        assert session.user_agent == kept


async def test_password_change_revokes_every_session(service: TokenService) -> None:
    pairs = [await service.issue("ada", client=Client(f"device{i}")) for i in range(3)]
    assert len(await service.list_sessions("ada")) == 3
    service.clock.advance(1)  # type: ignore[attr-defined]
    assert await service.password_changed("ada") == 3
    for pair in pairs:
        with pytest.raises(SessionRevokedError):
            await service.refresh(pair.refresh_token)
    # A login right after the change works.
    fresh = await service.issue("ada")
    assert service.verify_access(fresh.access_token).sub == "ada"


async def test_list_sessions_shows_devices(service: TokenService, clock: FrozenClock) -> None:
    await service.issue("ada", client=Client("web", "Firefox/140", "127.0.0.1"))
    clock.advance(5)
    await service.issue("ada", client=Client("cli", "curl/8", "127.0.0.2"))
    sessions = await service.list_sessions("ada")
    assert [(s.client_id, s.user_agent, s.ip) for s in sessions] == [
        ("web", "Firefox/140", "127.0.0.1"),
        ("cli", "curl/8", "127.0.0.2"),
    ]


async def test_key_rotation_keeps_old_tokens_valid(
    service: TokenService, clock: FrozenClock
) -> None:
    pair = await service.issue("ada")
    old_kid = service.keyring.current.kid
    upcoming = await service.keyring.add_next()
    assert upcoming.kid in {k["kid"] for k in service.keyring.jwks()["keys"]}  # type: ignore[attr-defined]
    await service.keyring.rotate()
    assert service.keyring.current.kid == upcoming.kid
    fresh = await service.issue("bob")
    assert jwt.inspect_unverified(fresh.access_token).header["kid"] == upcoming.kid
    assert service.verify_access(pair.access_token).sub == "ada"
    await service.refresh(pair.refresh_token)
    # Published for as long as a token it signed lives, plus SIGNING_LAG: other processes
    # may sign with it until they reload.
    clock.advance(service.policy.refresh_lifetime + SIGNING_LAG - 1)
    assert await service.keyring.prune() == []
    clock.advance(2)
    assert await service.keyring.prune() == [old_kid]


async def test_an_instance_signs_with_a_retired_key_only_until_it_reloads(
    store: SessionStore, policy: TokenPolicy, clock: FrozenClock
) -> None:
    # Two instances on one store. One rotates; the other still holds the old key as
    # current, and signs with it until it reloads, which processes sharing a store do
    # within SIGNING_LAG. The old key stays published until the last refresh token it
    # signed has expired.
    one = await TokenService.create(store, policy, clock=clock)
    two = await TokenService.create(store, policy, clock=clock)
    old = one.keyring.current.kid
    await one.keyring.rotate()
    clock.advance(SIGNING_LAG)
    late = await two.issue("ada")
    assert jwt.inspect_unverified(late.refresh_token).header["kid"] == old
    await two.keyring.load()
    fresh = await two.issue("bob")
    assert jwt.inspect_unverified(fresh.refresh_token).header["kid"] == one.keyring.current.kid
    expires = jwt.inspect_unverified(late.refresh_token).claims["exp"]
    clock.advance(expires - clock.now() - 1)
    assert await one.keyring.prune() == []
    assert old in {key.kid for key in one.keyring.verification_keys}
    clock.advance(2 + policy.leeway)
    assert await one.keyring.prune() == [old]


async def test_keys_encrypted_at_rest(store: SessionStore, policy: TokenPolicy) -> None:
    kek = bytes(range(32))
    service = await TokenService.create(store, policy, kek=kek)
    (record,) = await store.list_keys()
    assert b'"d"' not in record.material
    reopened = await TokenService.create(store, policy, kek=kek)
    assert reopened.keyring.current.kid == service.keyring.current.kid
    from tokenward.errors import ConfigurationError

    with pytest.raises(ConfigurationError):
        await TokenService.create(store, policy)
    with pytest.raises(ConfigurationError):
        await TokenService.create(store, policy, kek=bytes(32))


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"issuer": ""}, id="empty-issuer"),
        pytest.param({"access_lifetime": 0}, id="zero-access"),
        pytest.param({"access_lifetime": 10**7}, id="access-longer-than-refresh"),
        pytest.param({"idle_timeout": 10**8}, id="idle-beyond-absolute"),
        pytest.param({"reuse_grace": -1}, id="negative-grace"),
        pytest.param({"reuse_grace": 3600}, id="grace-too-long"),
        pytest.param({"algorithm": "none"}, id="alg-none"),
        pytest.param({"leeway": 3600}, id="leeway-too-long"),
    ],
)
def test_invalid_policies_fail_at_construction(kwargs: dict[str, Any]) -> None:
    from tokenward.errors import ConfigurationError

    settings: dict[str, Any] = {"issuer": ISSUER, "audience": AUDIENCE, **kwargs}
    with pytest.raises(ConfigurationError):
        TokenPolicy(**settings)


async def test_refresh_checks_client_and_scope_before_store_io(service: TokenService) -> None:
    from tokenward.service import ClientMismatchError, InvalidScopeError

    pair = await service.issue("ada", scope="read write", client=Client("web"))
    before = ops(service.store)
    with pytest.raises(ClientMismatchError) as caught:
        await service.refresh(pair.refresh_token, client_id="mobile")
    assert caught.value.code == "client_mismatch"
    with pytest.raises(InvalidScopeError):
        await service.refresh(pair.refresh_token, scope="read admin")
    assert ops(service.store) == before
    narrowed = await service.refresh(pair.refresh_token, scope="read", client_id="web")
    assert narrowed.scope == "read"
    assert service.verify_access(narrowed.access_token).scopes == {"read"}
    refreshed = jwt.inspect_unverified(narrowed.refresh_token).claims
    assert refreshed["scope"] == "read write"  # the session keeps its grant


async def test_session_ids_never_look_like_options(service: TokenService) -> None:
    # A base64url id starting with "-" could not be passed to `tokenward sessions revoke`.
    sids = [(await service.issue("ada")).sid for _ in range(64)]
    assert all(sid[0].isalpha() for sid in sids)
    assert len(set(sids)) == 64
