"""Lifespan and background work: key rotation schedule, purge, revocation sync, key reloads."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from tests.server.conftest import PASSWORD, bearer, login, refresh, serve, state_of
from tokenward.errors import ConfigurationError
from tokenward.jose import jwt
from tokenward.server import Settings, create_app
from tokenward.server._background import Housekeeper
from tokenward.service import SIGNING_LAG
from tokenward.stores import KeyState, MemoryStore
from tokenward.testing import FrozenClock

DAY = 86400


def housekeeper(app: Starlette) -> Housekeeper:
    keeper: Housekeeper = app.state.housekeeper
    return keeper


def kid_of(token: str) -> str:
    kid: str = jwt.inspect_unverified(token).header["kid"]
    return kid


async def jwks_kids(http: httpx.AsyncClient) -> list[str]:
    return [k["kid"] for k in (await http.get("/.well-known/jwks.json")).json()["keys"]]


async def test_the_key_rotation_schedule(settings: Settings, clock: FrozenClock) -> None:
    scheduled = replace(settings, key_rotation_days=7, jwks_max_age=300)
    app = create_app(scheduled, store=MemoryStore(), clock=clock)
    async with serve(app) as http:
        await state_of(app).users.create_user("ada", PASSWORD)
        keeper = housekeeper(app)
        old = kid_of((await login(http))["access_token"])
        assert await keeper.key_tick() is None
        assert await jwks_kids(http) == [old]

        # jwks_max_age (and the instances' reload lag) before the week is over, a next key
        # is published, not yet signing.
        clock.advance(7 * DAY - 300 - SIGNING_LAG - 1)
        assert await keeper.key_tick() is None
        clock.advance(1)
        assert await keeper.key_tick() == "next_added"
        kids = await jwks_kids(http)
        assert len(kids) == 2
        new = next(k for k in kids if k != old)
        before = await login(http)
        assert kid_of(before["access_token"]) == old
        assert await keeper.key_tick() is None

        # A week after the old key's creation, the next key signs; the old one stays published.
        clock.advance(300 + SIGNING_LAG)
        assert await keeper.key_tick() == "rotated"
        after = await login(http)
        assert kid_of(after["access_token"]) == new
        assert set(await jwks_kids(http)) == {old, new}
        assert (await refresh(http, before["refresh_token"])).status_code == 200

        # The old key goes once every token it signed has expired (the refresh lifetime),
        # counted from SIGNING_LAG after the rotation (another instance may sign until then).
        clock.advance(14 * DAY)
        assert await keeper.key_tick() == "next_added"  # the new key's week is over too
        assert await keeper.key_tick() is None
        assert old in await jwks_kids(http)
        clock.advance(SIGNING_LAG)
        assert await keeper.key_tick() == "pruned"
        assert old not in await jwks_kids(http)


async def test_without_a_schedule_keys_are_only_pruned(
    settings: Settings, clock: FrozenClock
) -> None:
    app = create_app(settings, store=MemoryStore(), clock=clock)
    async with serve(app):
        keyring = state_of(app).tokens.keyring
        old = keyring.current.kid
        await keyring.rotate()  # as `tokenward keys rotate` would
        clock.advance(365 * DAY)
        assert await housekeeper(app).key_tick() == "pruned"
        assert [r.state for r in keyring.records] == [KeyState.CURRENT]
        assert keyring.current.kid != old


async def test_purge_removes_expired_sessions(
    http: httpx.AsyncClient, app: Starlette, clock: FrozenClock
) -> None:
    await login(http)
    clock.advance(31 * DAY)
    assert await housekeeper(app).purge() >= 1
    assert await housekeeper(app).purge() == 0


async def test_instances_sharing_a_store_follow_each_others_revocations(
    settings: Settings, clock: FrozenClock
) -> None:
    store = MemoryStore()
    one = create_app(settings, store=store, clock=clock)
    two = create_app(settings, store=store, clock=clock)
    async with serve(one) as http_one, serve(two) as http_two:
        await state_of(one).users.create_user("ada", PASSWORD)
        pair = await login(http_one)
        token = bearer(pair["access_token"])
        assert (await http_two.get("/userinfo", headers=token)).status_code == 200
        assert (await http_one.post("/logout", headers=token)).status_code == 204
        # Instance two learns of it from the store's revocation events, not from one.
        assert (await http_two.get("/userinfo", headers=token)).status_code == 200
        assert await housekeeper(two).sync_revocations() == 1
        assert (await http_two.get("/userinfo", headers=token)).status_code == 401


async def test_a_restarted_instance_starts_from_the_revocation_snapshot(
    settings: Settings, clock: FrozenClock
) -> None:
    store = MemoryStore()
    first = create_app(settings, store=store, clock=clock)
    async with serve(first) as http:
        await state_of(first).users.create_user("ada", PASSWORD)
        pair = await login(http)
        await http.post("/logout", headers=bearer(pair["access_token"]))
    restarted = create_app(settings, store=store, clock=clock)
    async with serve(restarted) as http:
        denied = await http.get("/userinfo", headers=bearer(pair["access_token"]))
        assert denied.status_code == 401


async def test_tokens_signed_by_a_key_new_to_this_instance_verify_after_a_reload(
    settings: Settings, clock: FrozenClock
) -> None:
    store = MemoryStore()
    one = create_app(settings, store=store, clock=clock)
    two = create_app(settings, store=store, clock=clock)
    async with serve(one) as http_one, serve(two) as http_two:
        await state_of(one).users.create_user("ada", PASSWORD)
        await state_of(one).tokens.keyring.rotate()  # instance two has not seen this key
        pair = await login(http_one)
        assert kid_of(pair["access_token"]) not in state_of(two).tokens.keyring.verification_keys
        assert (await http_two.get("/userinfo", headers=bearer(pair["access_token"]))).is_success
        assert (await refresh(http_two, pair["refresh_token"])).is_success


async def test_the_lifespan_opens_and_closes_its_own_store(
    settings: Settings, tmp_path: Path, clock: FrozenClock
) -> None:
    db = tmp_path / "auth.db"
    app = create_app(replace(settings, store=f"sqlite:///{db}"), clock=clock)
    async with serve(app) as http:
        await state_of(app).users.create_user("ada", PASSWORD)
        assert (await login(http))["token_type"] == "Bearer"
        tasks = list(housekeeper(app).tasks)
        assert {t.get_name() for t in tasks} == {"purge", "revocation_sync", "keys"}
    assert all(t.done() for t in tasks)
    assert not state_of(app).started
    # The keys and the user were kept: a second start signs with the same key.
    again = create_app(replace(settings, store=f"sqlite:///{db}"), clock=clock)
    async with serve(again) as http:
        assert len(await jwks_kids(http)) == 1
        assert "scope" not in await login(http)


async def test_a_store_passed_in_is_left_open(
    settings: Settings, clock: FrozenClock, tmp_path: Path
) -> None:
    from tokenward.stores.sqlite import SQLiteStore

    store = await SQLiteStore.open(tmp_path / "auth.db")
    try:
        app = create_app(settings, store=store, clock=clock)
        async with serve(app):
            pass
        # The caller owns the store: it still answers after the app stopped.
        assert len(await store.list_keys()) == 1
    finally:
        await store.close()


@pytest.mark.parametrize("key_interval", [0.0, SIGNING_LAG / 2 + 1])
def test_key_interval_must_leave_room_within_the_signing_lag(
    settings: Settings, clock: FrozenClock, key_interval: float
) -> None:
    # Retired keys stay published SIGNING_LAG past their tokens: an instance must reload
    # its keys well within that.
    with pytest.raises(ConfigurationError):
        create_app(settings, store=MemoryStore(), clock=clock, key_interval=key_interval)
    create_app(settings, store=MemoryStore(), clock=clock, key_interval=SIGNING_LAG / 2)
