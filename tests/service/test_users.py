"""Accounts, password login, throttling and password changes, on every backend."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest

from tokenward.errors import ConfigurationError
from tokenward.service import (
    Argon2Parameters,
    Client,
    InvalidCredentialsError,
    InvalidScopeError,
    LoginThrottledError,
    PasswordHasher,
    SessionRevokedError,
    ThrottlePolicy,
    TokenService,
    UserService,
)
from tokenward.stores.base import UserExistsError, UserRecord, UserStore
from tokenward.testing import FrozenClock

FAST = Argon2Parameters(time_cost=1, memory_cost=8, parallelism=1)
PASSWORD = "correct horse battery staple"


@pytest.fixture
def users(service: TokenService) -> UserService:
    assert isinstance(service.store, UserStore)
    return UserService(
        service.store,
        service,
        hasher=PasswordHasher(FAST),
        throttle=ThrottlePolicy(window=900, per_account=3, per_address=5),
    )


async def test_create_and_login(users: UserService) -> None:
    created = await users.create_user("ada", PASSWORD, scopes=["read", "write"])
    assert created.password_hash.startswith("$argon2id$")
    assert PASSWORD not in created.password_hash
    pair = await users.login("ada", PASSWORD, scope=["read"], client=Client("web"))
    claims = users.tokens.verify_access(pair.access_token)
    assert claims.sub == created.sub
    assert claims.scopes == {"read"}
    everything = await users.login("ada", PASSWORD)
    assert users.tokens.verify_access(everything.access_token).scopes == {"read", "write"}


async def test_admin_scope_only_for_admins(users: UserService) -> None:
    await users.create_user("root", PASSWORD, admin=True)
    await users.create_user("ada", PASSWORD)
    root = await users.login("root", PASSWORD)
    assert "admin" in users.tokens.verify_access(root.access_token).scopes
    with pytest.raises(InvalidScopeError):  # Nothing of the request would be granted.
        await users.login("ada", PASSWORD, scope=["admin"])
    await users.create_user("bob", PASSWORD, scopes=["read"])
    bob = await users.login("bob", PASSWORD, scope=["admin", "read"])
    assert users.tokens.verify_access(bob.access_token).scopes == frozenset({"read"})


async def test_duplicate_username_refused(users: UserService) -> None:
    await users.create_user("ada", PASSWORD)
    with pytest.raises(UserExistsError):
        await users.create_user("ada", PASSWORD)


@pytest.mark.parametrize(
    ("username", "password"),
    [
        pytest.param("", PASSWORD, id="empty-name"),
        pytest.param("a b", PASSWORD, id="space-in-name"),
        pytest.param("x" * 65, PASSWORD, id="long-name"),
        pytest.param("ada", "short", id="short-password"),
    ],
)
async def test_bad_accounts_refused(users: UserService, username: str, password: str) -> None:
    with pytest.raises(ConfigurationError):
        await users.create_user(username, password)
    assert await users.list_users() == []


async def test_same_error_for_unknown_user_wrong_password_and_disabled(
    users: UserService,
) -> None:
    await users.create_user("ada", PASSWORD)
    await users.create_user("bob", PASSWORD)
    await users.set_disabled("bob")
    messages = set()
    for username, password in [("ada", "wrong password"), ("nobody", PASSWORD), ("bob", PASSWORD)]:
        with pytest.raises(InvalidCredentialsError) as caught:
            await users.login(username, password)
        messages.add((type(caught.value), caught.value.code, str(caught.value)))
    assert len(messages) == 1


async def test_throttle_per_account_then_window_resets(
    users: UserService, clock: FrozenClock
) -> None:
    await users.create_user("ada", PASSWORD)
    for _ in range(3):
        with pytest.raises(InvalidCredentialsError):
            await users.login("ada", "wrong password", client=Client(ip="127.0.0.1"))
    clock.advance(100)
    with pytest.raises(LoginThrottledError) as caught:
        await users.login("ada", PASSWORD, client=Client(ip="127.0.0.9"))
    assert caught.value.retry_after == 800
    clock.advance(800)
    await users.login("ada", PASSWORD, client=Client(ip="127.0.0.9"))


async def test_throttle_per_address(users: UserService) -> None:
    await users.create_user("ada", PASSWORD)
    for i in range(5):
        with pytest.raises(InvalidCredentialsError):
            await users.login(f"user{i}", "wrong password", client=Client(ip="127.0.0.7"))
    with pytest.raises(LoginThrottledError):
        await users.login("ada", PASSWORD, client=Client(ip="127.0.0.7"))
    await users.login("ada", PASSWORD, client=Client(ip="127.0.0.8"))


async def _race_then_exhaust(
    users: UserService, attempt: Callable[[int], Awaitable[object]], limit: int
) -> None:
    """20 wrong passwords at once, then one at a time until throttled: ``limit`` of all
    of them are checked. (Racing attempts may be refused a little early, never late.)"""
    raced = await asyncio.gather(*(attempt(i) for i in range(20)), return_exceptions=True)
    checked = sum(isinstance(r, InvalidCredentialsError) for r in raced)
    assert all(isinstance(r, InvalidCredentialsError | LoginThrottledError) for r in raced)
    assert 1 <= checked <= limit
    for i in range(20, 20 + limit - checked):
        with pytest.raises(InvalidCredentialsError):
            await attempt(i)
    with pytest.raises(LoginThrottledError):
        await attempt(99)


async def test_concurrent_logins_stop_at_the_account_limit(users: UserService) -> None:
    # Each attempt used to read the count before any of them had failed: all 20 were
    # checked. Only per_account (3) passwords may be tried per window.
    await users.create_user("ada", PASSWORD)
    await _race_then_exhaust(users, lambda _: users.login("ada", "wrong password!!"), 3)
    with pytest.raises(LoginThrottledError):
        await users.login("ada", PASSWORD)


async def test_concurrent_logins_stop_at_the_address_limit(users: UserService) -> None:
    address = Client(ip="127.0.0.7")
    await _race_then_exhaust(
        users, lambda i: users.login(f"user{i}", "wrong password!!", client=address), 5
    )
    with pytest.raises(LoginThrottledError):
        await users.login("user99", PASSWORD, client=address)


async def test_logins_in_flight_from_an_address_throttle_for_a_second(
    users: UserService, monkeypatch: pytest.MonkeyPatch
) -> None:
    address = Client(ip="127.0.0.7")
    waiting, release = asyncio.Semaphore(0), asyncio.Event()
    get_user = users.store.get_user

    async def held(username: str) -> UserRecord | None:
        if username != "user5":  # Holds the five in flight, lets a sixth through.
            waiting.release()
            await release.wait()
        return await get_user(username)

    monkeypatch.setattr(users.store, "get_user", held)
    in_flight = [
        asyncio.create_task(users.login(f"user{i}", "wrong password!!", client=address))
        for i in range(5)
    ]
    for _ in in_flight:  # All five are past the throttle, before their password check.
        await waiting.acquire()
    with pytest.raises(LoginThrottledError) as caught:  # No failure stored yet.
        await users.login("user5", "wrong password!!", client=address)
    assert caught.value.retry_after == 1
    release.set()
    for attempt in in_flight:
        with pytest.raises(InvalidCredentialsError):
            await attempt
    with pytest.raises(LoginThrottledError) as caught:
        await users.login("user5", "wrong password!!", client=address)
    assert caught.value.retry_after == 900


async def test_successful_logins_do_not_count_against_the_address(users: UserService) -> None:
    address = Client(ip="127.0.0.7")
    for i in range(5):
        await users.create_user(f"user{i}", PASSWORD)
    await asyncio.gather(*(users.login(f"user{i}", PASSWORD, client=address) for i in range(5)))
    for i in range(5):  # All five failures the address is allowed are still there.
        with pytest.raises(InvalidCredentialsError):
            await users.login(f"user{i}", "wrong password!!", client=address)
    with pytest.raises(LoginThrottledError):
        await users.login("user0", PASSWORD, client=address)


async def test_success_clears_account_failures(users: UserService) -> None:
    await users.create_user("ada", PASSWORD)
    for _ in range(2):
        with pytest.raises(InvalidCredentialsError):
            await users.login("ada", "wrong password")
    await users.login("ada", PASSWORD)
    for _ in range(2):
        with pytest.raises(InvalidCredentialsError):
            await users.login("ada", "wrong password")
    await users.login("ada", PASSWORD)


async def test_set_password_revokes_sessions(users: UserService, clock: FrozenClock) -> None:
    await users.create_user("ada", PASSWORD)
    pair = await users.login("ada", PASSWORD)
    clock.advance(1)
    assert await users.set_password("ada", "a brand new passphrase") == 1
    with pytest.raises(SessionRevokedError):
        await users.tokens.refresh(pair.refresh_token)
    with pytest.raises(InvalidCredentialsError):
        await users.login("ada", PASSWORD)
    await users.login("ada", "a brand new passphrase")


def _stronger(users: UserService) -> UserService:
    """The same accounts under stronger argon2 parameters: its logins rehash."""
    return UserService(users.store, users.tokens, hasher=PasswordHasher(Argon2Parameters(2, 16, 1)))


async def test_rehash_when_parameters_change(users: UserService) -> None:
    created = await users.create_user("ada", PASSWORD)
    stronger = _stronger(users)
    await stronger.login("ada", PASSWORD)
    updated = await users.get_user("ada")
    assert updated is not None
    assert updated.password_hash != created.password_hash
    assert "m=16,t=2,p=1" in updated.password_hash
    await stronger.login("ada", PASSWORD)


async def _change_during_login(
    users: UserService,
    monkeypatch: pytest.MonkeyPatch,
    login: Callable[[], Coroutine[Any, Any, object]],
    change: Callable[[], Awaitable[object]],
) -> object:
    """Run ``change`` to completion after ``login`` has checked the password (it holds the
    login where it clears the account's failures), then let the login finish."""
    checked, resume = asyncio.Event(), asyncio.Event()
    clear_failures = users.store.clear_failures

    async def held(key: str) -> None:
        checked.set()
        await resume.wait()
        await clear_failures(key)

    monkeypatch.setattr(users.store, "clear_failures", held)
    attempt = asyncio.create_task(login())
    await checked.wait()
    await change()
    resume.set()
    return await attempt


CHANGES = [
    pytest.param(lambda u: u.set_password("ada", "a brand new passphrase"), id="password"),
    pytest.param(lambda u: u.set_disabled("ada"), id="disabled"),
]


@pytest.mark.parametrize("rehash", [False, True], ids=["same-hash", "rehash"])
@pytest.mark.parametrize("change", CHANGES)
async def test_password_change_or_disable_during_login_wins(
    users: UserService,
    monkeypatch: pytest.MonkeyPatch,
    change: Callable[[UserService], Awaitable[object]],
    rehash: bool,
) -> None:
    # The login used to write back the record it read before argon2 ran (undoing the
    # change), and to issue a session after the change had revoked the user's sessions.
    created = await users.create_user("ada", PASSWORD)
    stronger = _stronger(users)
    logging_in = stronger if rehash else users
    with pytest.raises(InvalidCredentialsError):
        await _change_during_login(
            users, monkeypatch, lambda: logging_in.login("ada", PASSWORD), lambda: change(users)
        )
    assert await users.tokens.list_sessions(created.sub) == []
    monkeypatch.undo()
    with pytest.raises(InvalidCredentialsError):
        await logging_in.login("ada", PASSWORD)
    stored = await users.get_user("ada")
    assert stored is not None
    assert stored.password_hash != created.password_hash or stored.disabled


async def test_scope_change_during_rehashing_login_is_kept(
    users: UserService, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = await users.create_user("ada", PASSWORD, scopes=["read"])
    stronger = _stronger(users)
    await _change_during_login(
        users,
        monkeypatch,
        lambda: stronger.login("ada", PASSWORD),
        lambda: users.set_scopes("ada", ["read", "write"], admin=True),
    )
    stored = await users.get_user("ada")
    assert stored is not None
    assert (stored.scopes, stored.admin) == (("read", "write"), True)
    assert stored.password_hash == created.password_hash  # Rehashed at the next login.


async def test_nothing_secret_in_audit_log(
    users: UserService, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="tokenward")
    await users.create_user("ada", PASSWORD)
    pair = await users.login("ada", PASSWORD)
    with pytest.raises(InvalidCredentialsError):
        await users.login("ada", "wrong password")
    await users.tokens.refresh(pair.refresh_token)
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "login_failed" in logged
    for secret in (PASSWORD, "wrong password", pair.access_token, pair.refresh_token):
        assert secret not in logged


def test_password_hasher_verifies_and_burns_time_for_unknown_users() -> None:
    hasher = PasswordHasher(FAST)
    encoded = hasher.hash(PASSWORD)
    assert hasher.verify(encoded, PASSWORD)
    assert not hasher.verify(encoded, "wrong")
    assert not hasher.verify(None, PASSWORD)
    assert not hasher.verify("not-a-hash", PASSWORD)
    assert not hasher.needs_rehash(encoded)
    with pytest.raises(ConfigurationError):
        Argon2Parameters(time_cost=0)
