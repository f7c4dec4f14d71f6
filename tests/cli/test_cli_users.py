"""``tokenward users``: add, list, disable, enable and set-password on a real SQLite store."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from tokenward.service import InvalidCredentialsError, SessionRevokedError

from .server_support import PASSWORD, isolate_environment, login, on_store, refresh, sqlite_url
from .support import CLI

NEW_PASSWORD = "another long passphrase"


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh SQLite store, named in TOKENWARD_STORE as an operator would."""
    isolate_environment(monkeypatch)
    url = sqlite_url(tmp_path)
    monkeypatch.setenv("TOKENWARD_STORE", url)
    return url


def add(cli: CLI, name: str, *options: str, password: str = PASSWORD) -> None:
    result = cli("users", "add", name, "--password-stdin", *options, stdin=password + "\n")
    assert result.status == 0, result.err


# -- add ------------------------------------------------------------------------------


def test_add_with_password_on_stdin_creates_a_user_who_can_log_in(cli: CLI, store: str) -> None:
    result = cli("users", "add", "ada", "--password-stdin", stdin=PASSWORD + "\n")
    assert result.status == 0, result.err
    assert result.out.startswith("created user 'ada' (sub u-")
    assert PASSWORD not in result.out + result.err
    pair = login(store, "ada")
    assert pair.scope == ""


def test_add_grants_scopes_and_admin(cli: CLI, store: str) -> None:
    add(cli, "root", "--scope", "read write", "--scope", "users:manage", "--admin")
    pair = login(store, "root")
    assert set(pair.scope.split()) == {"read", "write", "users:manage", "admin"}


def test_add_takes_the_store_from_the_option_over_the_environment(
    cli: CLI, store: str, tmp_path: Path
) -> None:
    other = f"sqlite:///{tmp_path / 'other.db'}"
    result = cli("users", "add", "ada", "--password-stdin", "--store", other, stdin=PASSWORD)
    assert result.status == 0, result.err
    assert login(other, "ada").sid
    assert cli("users", "list", "--json").json() == []


def test_add_an_existing_user_is_refused_with_status_1(cli: CLI, store: str) -> None:
    add(cli, "ada")
    result = cli("users", "add", "ada", "--password-stdin", stdin=NEW_PASSWORD)
    assert result.status == 1
    assert result.error_line() == "error: user_exists: a user named 'ada' exists already"
    login(store, "ada", PASSWORD)  # the first password still holds


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["users", "add", "ada", "hunter2-secret"], id="positional"),
        pytest.param(["users", "add", "ada", "--password", "hunter2-secret"], id="option"),
        pytest.param(["users", "add", "ada", "--password=hunter2-secret"], id="option-equals"),
        pytest.param(["users", "set-password", "ada", "hunter2-secret"], id="set-password"),
    ],
)
def test_a_password_on_the_command_line_is_refused_and_not_echoed(
    cli: CLI, store: str, argv: list[str]
) -> None:
    result = cli(*argv)
    assert result.status == 2
    line = result.error_line()
    assert line.startswith("error: usage_error: passwords are not taken from the command line")
    assert "hunter2" not in result.err + result.out
    assert cli("users", "list", "--json").json() == []


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["add", "eve", "--password-stdin=hunter2xx"], id="explicit-argument"),
        pytest.param(["add", "eve", "--passwd", "hunter2xx"], id="unknown-option"),
        pytest.param(["add", "eve", "-p", "hunter2xx"], id="unknown-short-option"),
        pytest.param(["add", "eve", "-phunter2xx"], id="short-option-glued"),
        pytest.param(["add", "eve", "--pass=hunter2xx"], id="abbreviation"),
        pytest.param(["add", "eve", "--password-std=hunter2xx"], id="unique-abbreviation"),
        pytest.param(["set-password", "eve", "--password-stdin=hunter2xx"], id="set-password"),
        pytest.param(["set-password", "eve", "--pass", "hunter2xx"], id="set-password-abbrev"),
        pytest.param(["list", "--pw=hunter2xx"], id="list"),
        pytest.param(["disable", "eve", "hunter2xx"], id="disable"),
        pytest.param(["enable", "eve", "--secret", "hunter2xx"], id="enable"),
    ],
)
def test_a_usage_error_of_a_users_command_does_not_repeat_what_was_typed(
    cli: CLI, store: str, argv: list[str]
) -> None:
    result = cli("users", *argv, stdin=PASSWORD)
    assert result.status == 2
    line = result.error_line()
    assert line.startswith("error: usage_error: ")
    assert "not repeated in case of a password" in line
    assert "hunter2" not in result.err + result.out
    assert cli("users", "list", "--json").json() == []


def test_add_without_a_name_asks_for_the_name_only(cli: CLI, store: str) -> None:
    result = cli("users", "add")
    assert result.status == 2
    assert result.error_line() == (
        "error: usage_error: the following arguments are required: NAME "
        "(see 'tokenward users add --help')"
    )


def _stdin_bytes(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    # As Python sets up stdin under a C or POSIX locale, or in UTF-8 mode: bytes that
    # are not UTF-8 are read as lone surrogates rather than failing the read.
    stream = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="surrogateescape")
    monkeypatch.setattr(sys, "stdin", stream)


def test_add_refuses_a_password_on_stdin_that_is_not_utf8(
    cli: CLI, store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _stdin_bytes(monkeypatch, b"\xff\xfeabcdefgh\n")
    result = cli("users", "add", "bin", "--password-stdin")
    assert result.status == 2
    assert result.error_line() == "error: usage_error: password stdin is not UTF-8 text"
    assert cli("users", "list", "--json").json() == []


def test_add_without_a_terminal_asks_for_password_stdin(cli: CLI, store: str) -> None:
    result = cli("users", "add", "ada", stdin="")
    assert result.status == 2
    assert "pipe it with --password-stdin" in result.error_line()


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        pytest.param("", "no password on stdin", id="empty"),
        pytest.param("\n", "no password on stdin", id="empty-line"),
        pytest.param("first line\nsecond line\n", "must be a single line", id="two-lines"),
        pytest.param("short\n", "a password must be 8 to 1024 characters", id="too-short"),
    ],
)
def test_add_refuses_unusable_passwords(cli: CLI, store: str, stdin: str, message: str) -> None:
    result = cli("users", "add", "ada", "--password-stdin", stdin=stdin)
    assert result.status == 2
    assert message in result.error_line()
    assert cli("users", "list", "--json").json() == []


def test_stdin_password_keeps_inner_and_trailing_spaces(cli: CLI, store: str) -> None:
    add(cli, "ada", password="  spaced out  \r")
    login(store, "ada", "  spaced out  ")


def test_add_refuses_a_bad_username_and_scope(cli: CLI, store: str) -> None:
    bad_name = cli("users", "add", "not a name", "--password-stdin", stdin=PASSWORD)
    assert bad_name.status == 2
    assert bad_name.error_line().startswith("error: configuration_error: a username is")
    bad_scope = cli("users", "add", "ada", "--scope", 'say"hi', "--password-stdin", stdin=PASSWORD)
    assert bad_scope.status == 2
    assert "scope" in bad_scope.error_line()


# -- list -----------------------------------------------------------------------------


def test_list_shows_a_table_without_hashes(cli: CLI, store: str) -> None:
    add(cli, "bob", "--scope", "read")
    add(cli, "ada", "--admin")
    result = cli("users", "list")
    assert result.status == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].split() == ["USERNAME", "SUB", "SCOPES", "ADMIN", "DISABLED", "CREATED"]
    assert [line.split()[0] for line in lines[1:]] == ["ada", "bob"]
    assert "argon2" not in result.out


def test_list_json_has_every_field_but_the_hash(cli: CLI, store: str) -> None:
    add(cli, "ada", "--scope", "read write")
    (user,) = cli("users", "list", "--json").json()
    assert set(user) == {
        "username", "sub", "scopes", "admin", "disabled", "created_at", "updated_at",
    }  # fmt: skip
    assert (user["username"], user["scopes"], user["admin"]) == ("ada", ["read", "write"], False)
    assert user["sub"].startswith("u-")


def test_list_of_an_empty_store_says_how_to_add_a_user(cli: CLI, store: str) -> None:
    result = cli("users", "list")
    assert (result.status, result.out) == (0, "")
    assert "tokenward users add NAME" in result.err


# -- disable, enable ------------------------------------------------------------------


def test_disable_revokes_sessions_and_blocks_login(cli: CLI, store: str) -> None:
    add(cli, "ada")
    first, second = login(store, "ada"), login(store, "ada")
    result = cli("users", "disable", "ada")
    assert (result.status, result.out) == (0, "disabled user 'ada'; revoked 2 sessions\n")
    for pair in (first, second):
        with pytest.raises(SessionRevokedError):
            refresh(store, pair.refresh_token)
    with pytest.raises(InvalidCredentialsError):
        login(store, "ada")
    assert cli("users", "list", "--json").json()[0]["disabled"] is True


def test_disable_twice_notes_it(cli: CLI, store: str) -> None:
    add(cli, "ada")
    cli("users", "disable", "ada")
    result = cli("users", "disable", "ada")
    assert result.status == 0, result.err
    assert "was disabled already" in result.err


def test_enable_lets_a_disabled_user_log_in_again(cli: CLI, store: str) -> None:
    add(cli, "ada")
    cli("users", "disable", "ada")
    result = cli("users", "enable", "ada")
    assert (result.status, result.out) == (0, "enabled user 'ada'\n")
    assert login(store, "ada").sid


@pytest.mark.parametrize("command", ["disable", "enable"])
def test_disable_or_enable_of_an_unknown_user_is_refused(
    cli: CLI, store: str, command: str
) -> None:
    result = cli("users", command, "nobody")
    assert result.status == 1
    assert result.error_line() == "error: unknown_user: no user named 'nobody'"


# -- set-password ---------------------------------------------------------------------


def test_set_password_revokes_sessions_and_says_how_many(cli: CLI, store: str) -> None:
    add(cli, "ada")
    add(cli, "bob")
    pair = login(store, "ada")
    bystander = login(store, "bob")
    result = cli("users", "set-password", "ada", "--password-stdin", stdin=NEW_PASSWORD + "\n")
    assert (result.status, result.out) == (0, "changed the password of 'ada'; revoked 1 session\n")
    with pytest.raises(SessionRevokedError):
        refresh(store, pair.refresh_token)
    with pytest.raises(InvalidCredentialsError):
        login(store, "ada", PASSWORD)
    assert login(store, "ada", NEW_PASSWORD).sid
    assert refresh(store, bystander.refresh_token).sid == bystander.sid


def test_set_password_of_an_unknown_user_is_refused_before_reading_stdin(
    cli: CLI, store: str
) -> None:
    result = cli("users", "set-password", "nobody", stdin="")
    assert result.status == 1
    assert result.error_line() == "error: unknown_user: no user named 'nobody'"


def test_set_password_keeps_the_old_one_when_the_new_one_is_refused(cli: CLI, store: str) -> None:
    add(cli, "ada")
    pair = login(store, "ada")
    result = cli("users", "set-password", "ada", "--password-stdin", stdin="short")
    assert result.status == 2
    assert login(store, "ada", PASSWORD).sid
    assert refresh(store, pair.refresh_token).sid == pair.sid


def test_set_password_refuses_a_password_on_stdin_that_is_not_utf8(
    cli: CLI, store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    add(cli, "ada")
    _stdin_bytes(monkeypatch, b"\xff\xfeabcdefgh\n")
    result = cli("users", "set-password", "ada", "--password-stdin")
    assert result.status == 2
    assert result.error_line() == "error: usage_error: password stdin is not UTF-8 text"
    assert login(store, "ada", PASSWORD).sid


def test_password_hashes_use_the_configured_argon2_parameters(cli: CLI, store: str) -> None:
    add(cli, "ada")
    hashes = on_store(store, lambda runtime: runtime.store.list_users())
    assert hashes[0].password_hash.startswith("$argon2id$v=19$m=8,t=1,p=1$")
