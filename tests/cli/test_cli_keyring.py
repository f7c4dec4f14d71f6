"""``tokenward keys rotate`` and ``keys list``: the server's key ring in a real SQLite store."""

from __future__ import annotations

import base64
import os
from dataclasses import replace
from pathlib import Path

import pytest

from tokenward.cli._runtime import Runtime
from tokenward.jose import jwt
from tokenward.service import SIGNING_LAG
from tokenward.stores import KeyState

from .server_support import PASSWORD, isolate_environment, login, ok, on_store, sqlite_url
from .support import CLI


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    isolate_environment(monkeypatch)
    url = sqlite_url(tmp_path)
    monkeypatch.setenv("TOKENWARD_STORE", url)
    return url


def keys(cli: CLI) -> list[dict[str, object]]:
    result = cli("keys", "list", "--json")
    assert result.status == 0, result.err
    listed: list[dict[str, object]] = result.json()
    return listed


def test_list_on_a_fresh_store_shows_the_first_key_and_no_material(cli: CLI, store: str) -> None:
    (key,) = keys(cli)
    assert set(key) == {"kid", "alg", "state", "created_at", "retire_after"}
    assert (key["alg"], key["state"], key["retire_after"]) == ("ES256", "current", None)
    table = cli("keys", "list")
    header, row = table.out.splitlines()
    assert header.split() == ["KID", "ALG", "STATE", "CREATED", "RETIRE", "AFTER"]
    assert row.split()[:3] == [key["kid"], "ES256", "current"]
    records = on_store(store, lambda runtime: runtime.store.list_keys())
    secret = records[0].material.decode()
    assert secret not in table.out
    assert '"d"' not in table.out + cli("keys", "list", "--json").out


def test_rotate_retires_the_old_key_which_still_verifies_old_tokens(cli: CLI, store: str) -> None:
    ok(cli("users", "add", "ada", "--password-stdin", stdin=PASSWORD))
    (old,) = keys(cli)
    before = login(store, "ada")
    result = cli("keys", "rotate")
    assert result.status == 0, result.err
    current = {k["state"]: k for k in keys(cli)}
    assert set(current) == {"current", "retired"}
    new_kid = current["current"]["kid"]
    assert new_kid != old["kid"]
    assert current["retired"]["kid"] == old["kid"]
    assert result.out.splitlines()[0] == f"current key is now {new_kid} (ES256)"
    assert result.out.splitlines()[1].startswith(f"retired key {old['kid']}; published until 20")
    retire_after = current["retired"]["retire_after"]
    assert isinstance(retire_after, float)
    # Published for the refresh lifetime (14 days by default) after the rotation, plus the
    # time other instances may go on signing with it before they reload.
    assert retire_after - float(str(current["current"]["created_at"])) == pytest.approx(
        14 * 86400 + SIGNING_LAG, abs=30
    )

    after = login(store, "ada")
    assert jwt.inspect_unverified(after.access_token).header["kid"] == new_kid
    # A fresh service (as a restarted server) still accepts a token the retired key signed.
    assert on_store(store, lambda runtime: _verify(runtime, before.access_token)) == before.sid


async def _verify(runtime: Runtime, token: str) -> str:
    return runtime.tokens.verify_access(token).sid


def test_prepare_publishes_a_next_key_that_the_following_rotate_promotes(
    cli: CLI, store: str
) -> None:
    (first,) = keys(cli)
    prepared = cli("keys", "rotate", "--prepare")
    assert prepared.status == 0, prepared.err
    states = {k["state"]: k["kid"] for k in keys(cli)}
    assert states == {"current": first["kid"], "next": states["next"]}
    assert (
        prepared.out == f"added next key {states['next']} (ES256); it signs after 'keys rotate'\n"
    )
    ok(cli("keys", "rotate"))
    after = {k["state"]: k["kid"] for k in keys(cli)}
    assert after == {"current": states["next"], "retired": first["kid"]}


def test_rotate_prunes_retired_keys_whose_tokens_have_expired(cli: CLI, store: str) -> None:
    (first,) = keys(cli)
    ok(cli("keys", "rotate"))

    async def expire(runtime: Runtime) -> None:
        (retired,) = [r for r in await runtime.store.list_keys() if r.state is KeyState.RETIRED]
        await runtime.store.put_key(replace(retired, retire_after=1.0))

    on_store(store, expire)
    result = cli("keys", "rotate")
    assert result.status == 0, result.err
    assert f"pruned retired key {first['kid']}" in result.out.splitlines()
    assert first["kid"] not in [k["kid"] for k in keys(cli)]


def test_rotate_to_another_algorithm(cli: CLI, store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    keys(cli)
    monkeypatch.setenv("TOKENWARD_ALGORITHM", "EdDSA")
    result = cli("keys", "rotate")
    assert result.status == 0, result.err
    assert {(k["alg"], k["state"]) for k in keys(cli)} == {
        ("ES256", "retired"),
        ("EdDSA", "current"),
    }


def test_keys_encrypted_at_rest_need_the_same_kek(
    cli: CLI, store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    kek = base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
    monkeypatch.setenv("TOKENWARD_KEK", kek)
    ok(cli("keys", "rotate"))
    records = on_store(store, lambda runtime: runtime.store.list_keys())
    assert all(r.material.startswith(b"tw-kek1:") for r in records)

    monkeypatch.delenv("TOKENWARD_KEK")
    result = cli("keys", "list")
    assert result.status == 2
    assert result.error_line() == (
        "error: configuration_error: signing keys are encrypted at rest; "
        "configure the key-encryption key"
    )
    wrong = base64.urlsafe_b64encode(os.urandom(32)).decode()
    monkeypatch.setenv("TOKENWARD_KEK", wrong)
    assert "does not open the stored signing keys" in cli("keys", "list").error_line()
