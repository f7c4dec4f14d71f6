"""The user and login-throttling contract, run against every backend."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tokenward.stores.base import SessionStore, UserExistsError, UserRecord, UserStore

T0 = 1_800_000_000.0


def user(username: str = "ada", sub: str = "u-ada", **changes: object) -> UserRecord:
    record = UserRecord(
        sub=sub,
        username=username,
        password_hash="$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
        created_at=T0,
        updated_at=T0,
        scopes=("read", "write"),
    )
    return replace(record, **changes)  # type: ignore[arg-type]


def users_of(store: SessionStore) -> UserStore:
    assert isinstance(store, UserStore)
    return store


async def test_create_get_list(store: SessionStore) -> None:
    users = users_of(store)
    await users.create_user(user("bob", "u-bob", admin=True))
    await users.create_user(user())
    got = await users.get_user("ada")
    assert got == user()
    assert await users.get_user("ADA") is None
    assert await users.get_user("nobody") is None
    listed = await users.list_users()
    assert [u.username for u in listed] == ["ada", "bob"]
    assert listed[1].admin is True
    assert listed[0].scopes == ("read", "write")


@pytest.mark.parametrize(
    ("username", "sub"),
    [pytest.param("ada", "u-other", id="same-name"), pytest.param("eve", "u-ada", id="same-sub")],
)
async def test_duplicates_refused(store: SessionStore, username: str, sub: str) -> None:
    users = users_of(store)
    await users.create_user(user())
    with pytest.raises(UserExistsError):
        await users.create_user(user(username, sub))
    assert [u.username for u in await users.list_users()] == ["ada"]


async def test_update(store: SessionStore) -> None:
    users = users_of(store)
    await users.create_user(user())
    changed = user(disabled=True, password_hash="$argon2id$new", updated_at=T0 + 5, scopes=())
    assert await users.update_user(changed)
    assert await users.get_user("ada") == changed
    renamed = replace(changed, username="ada2")
    assert await users.update_user(renamed)
    assert await users.get_user("ada") is None
    assert await users.get_user("ada2") == renamed
    assert not await users.update_user(user("ghost", "u-ghost"))


async def test_rename_onto_taken_name_is_refused(store: SessionStore) -> None:
    users = users_of(store)
    await users.create_user(user())
    await users.create_user(user("bob", "u-bob"))
    with pytest.raises(UserExistsError):
        await users.update_user(user("bob", "u-ada"))
    got = await users.get_user("bob")
    assert got is not None
    assert got.sub == "u-bob"


async def test_failure_window(store: SessionStore) -> None:
    users = users_of(store)
    assert await users.failures("acct:ada", now=T0) == (0, T0)
    assert await users.record_failure("acct:ada", now=T0, window=60) == 1
    assert await users.record_failure("acct:ada", now=T0 + 30, window=60) == 2
    assert await users.failures("acct:ada", now=T0 + 31) == (2, T0 + 60)
    assert await users.failures("ip:127.0.0.1", now=T0 + 31) == (0, T0 + 31)
    # The window starts again after it ends.
    assert await users.record_failure("acct:ada", now=T0 + 60, window=60) == 1
    await users.clear_failures("acct:ada")
    assert await users.failures("acct:ada", now=T0 + 61) == (0, T0 + 61)
