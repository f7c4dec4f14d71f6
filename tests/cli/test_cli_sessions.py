"""``tokenward sessions``: list and revoke sessions on a real SQLite store."""

from __future__ import annotations

from pathlib import Path

import pytest

from tokenward.service import SessionRevokedError

from .server_support import PASSWORD, isolate_environment, login, ok, refresh, sqlite_url
from .support import CLI


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: CLI) -> str:
    """A SQLite store (in TOKENWARD_STORE) with the users ada and bob."""
    isolate_environment(monkeypatch)
    url = sqlite_url(tmp_path)
    monkeypatch.setenv("TOKENWARD_STORE", url)
    for name in ("ada", "bob"):
        ok(cli("users", "add", name, "--password-stdin", stdin=PASSWORD))
    return url


def test_list_shows_every_users_active_sessions_without_tokens(cli: CLI, store: str) -> None:
    ada = login(store, "ada", agent="Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0")
    bob = login(store, "bob", agent="curl/8.5")
    result = cli("sessions", "list")
    assert result.status == 0, result.err
    header, *rows = result.out.splitlines()
    assert header.split() == [
        "SID", "USER", "CLIENT", "ADDRESS", "DEVICE", "CREATED", "LAST", "USED", "EXPIRES",
    ]  # fmt: skip
    assert [row.split()[:4] for row in rows] == [
        [ada.sid, "ada", "default", "127.0.0.1"],
        [bob.sid, "bob", "default", "127.0.0.1"],
    ]
    assert "Firefox/130.0" in rows[0]
    for pair in (ada, bob):
        for token in (pair.access_token, pair.refresh_token):
            for part in token.split("."):
                assert part not in result.out


def test_list_for_one_user_as_json(cli: CLI, store: str) -> None:
    pair = login(store, "ada")
    login(store, "bob")
    result = cli("sessions", "list", "--user", "ada", "--json")
    assert result.status == 0, result.err
    (session,) = result.json()
    assert session["sid"] == pair.sid
    assert (session["user"], session["client_id"], session["ip"]) == ("ada", "default", "127.0.0.1")
    assert session["user_agent"] == "pytest"
    assert session["created_at"] <= session["last_used_at"] < session["expires_at"]
    assert set(session) == {
        "sid", "user", "sub", "client_id", "ip", "user_agent", "scope",
        "created_at", "last_used_at", "expires_at",
    }  # fmt: skip


def test_list_leaves_out_revoked_sessions(cli: CLI, store: str) -> None:
    gone = login(store, "ada")
    kept = login(store, "ada")
    ok(cli("sessions", "revoke", gone.sid))
    assert [s["sid"] for s in cli("sessions", "list", "--json").json()] == [kept.sid]


def test_list_with_no_sessions(cli: CLI, store: str) -> None:
    result = cli("sessions", "list")
    assert (result.status, result.out, result.err) == (0, "", "no active sessions\n")
    assert cli("sessions", "list", "--json").json() == []


def test_list_for_an_unknown_user_is_refused(cli: CLI, store: str) -> None:
    result = cli("sessions", "list", "--user", "nobody")
    assert result.status == 1
    assert result.error_line() == "error: unknown_user: no user named 'nobody'"


def test_revoke_one_session_stops_its_refresh_token(cli: CLI, store: str) -> None:
    revoked = login(store, "ada")
    other = login(store, "ada")
    result = cli("sessions", "revoke", revoked.sid)
    assert (result.status, result.out) == (0, f"revoked session {revoked.sid}\n")
    with pytest.raises(SessionRevokedError):
        refresh(store, revoked.refresh_token)
    assert refresh(store, other.refresh_token).sid == other.sid


def test_revoke_a_revoked_session_again_is_a_note(cli: CLI, store: str) -> None:
    pair = login(store, "ada")
    cli("sessions", "revoke", pair.sid)
    result = cli("sessions", "revoke", pair.sid)
    assert (result.status, result.out) == (0, "")
    assert result.err == f"session {pair.sid} was revoked already\n"


def test_revoke_an_unknown_session_is_refused(cli: CLI, store: str) -> None:
    result = cli("sessions", "revoke", "no-such-sid")
    assert result.status == 1
    assert result.error_line() == "error: unknown_session: no session with id 'no-such-sid'"


def test_revoke_a_users_sessions_leaves_others_alone(cli: CLI, store: str) -> None:
    ada = [login(store, "ada"), login(store, "ada")]
    bob = login(store, "bob")
    result = cli("sessions", "revoke", "--user", "ada")
    assert (result.status, result.out) == (0, "revoked 2 sessions of 'ada'\n")
    for pair in ada:
        with pytest.raises(SessionRevokedError):
            refresh(store, pair.refresh_token)
    assert refresh(store, bob.refresh_token).sid == bob.sid


def test_revoke_a_user_without_sessions(cli: CLI, store: str) -> None:
    result = cli("sessions", "revoke", "--user", "bob")
    assert (result.status, result.out) == (0, "revoked 0 sessions of 'bob'\n")


def test_revoke_an_unknown_users_sessions_is_refused(cli: CLI, store: str) -> None:
    result = cli("sessions", "revoke", "--user", "nobody")
    assert result.status == 1
    assert result.error_line() == "error: unknown_user: no user named 'nobody'"


def test_revoke_all(cli: CLI, store: str) -> None:
    pairs = [login(store, "ada"), login(store, "bob"), login(store, "bob")]
    result = cli("sessions", "revoke", "--all")
    assert (result.status, result.out) == (0, "revoked 3 sessions of all users\n")
    for pair in pairs:
        with pytest.raises(SessionRevokedError):
            refresh(store, pair.refresh_token)
    assert cli("sessions", "list", "--json").json() == []


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        pytest.param([], "one of the arguments SID --user --all is required", id="nothing"),
        pytest.param(["some-sid", "--all"], "not allowed with argument", id="sid-and-all"),
        pytest.param(["--user", "ada", "--all"], "not allowed with argument", id="user-and-all"),
    ],
)
def test_revoke_needs_exactly_one_target(
    cli: CLI, store: str, argv: list[str], fragment: str
) -> None:
    pair = login(store, "ada")
    result = cli("sessions", "revoke", *argv)
    assert result.status == 2
    assert fragment in result.error_line()
    assert refresh(store, pair.refresh_token).sid == pair.sid


def test_a_hostile_user_agent_cannot_forge_rows_or_send_escapes(cli: CLI, store: str) -> None:
    login(store, "ada", agent="Evil\x1b[2J\nSID  USER  forged row " + "x" * 200)
    result = ok(cli("sessions", "list"))
    _, row = result.out.splitlines()
    # The service stores control characters as U+FFFD; the table shows them as they are.
    assert "Evil\ufffd[2J\ufffdSID USER forged row xxx" in row
    assert "\x1b" not in result.out
    assert "x" * 70 not in row
    assert "..." in row
