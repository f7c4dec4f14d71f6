"""End to end: ``tokenward serve`` as a real process on a loopback port, driven over HTTP.

A user is created with the CLI (another process, on the same SQLite file), logs in with
the password grant, calls ``/userinfo``, refreshes, and replays the superseded refresh
token: with the reuse grace at 0 that is reuse, the whole session is revoked and even
the newest refresh token fails. A second login ends with ``POST /logout``; a third
session is revoked from the CLI while the server runs, and the server stops honouring
its access token once the revocation feed brings the news. SIGTERM then stops the
server gracefully, with exit status 0. No token or password ever reaches its output.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tokenward.jose import jwt

PASSWORD = "correct horse battery staple"
STARTUP_SECONDS = 30.0
STOP_SECONDS = 20.0
FEED_SECONDS = 15.0
_CLI = [sys.executable, "-c", "from tokenward.cli import main; raise SystemExit(main())"]

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _environment() -> dict[str, str]:
    """The caller's environment without its tokenward settings, plus the test's own."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("TOKENWARD_") or name.startswith("TOKENWARD_TEST_")
    }
    env.update(
        TOKENWARD_ARGON2_TIME_COST="1",
        TOKENWARD_ARGON2_MEMORY_COST="8",
        TOKENWARD_ARGON2_PARALLELISM="1",
        TOKENWARD_REUSE_GRACE="0",
        PYTHONUNBUFFERED="1",
    )
    return env


@dataclass
class Server:
    """A running ``tokenward serve`` process and what it needs to be talked to."""

    process: subprocess.Popen[bytes]
    url: str
    store: str
    directory: Path

    def output(self) -> str:
        """Everything the server wrote so far, stdout then stderr."""
        return (self.directory / "stdout.log").read_text() + (
            self.directory / "stderr.log"
        ).read_text()

    def cli(self, *argv: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run the ``tokenward`` command line on this server's store."""
        return subprocess.run(  # noqa: S603 - a fixed interpreter and test-controlled argv
            [*_CLI, *argv, "--store", self.store],
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
            env=_environment(),
            cwd=self.directory,
        )


def _wait_until_ready(server: Server) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"tokenward serve exited early:\n{server.output()}")
        try:
            if httpx.get(server.url + "/.well-known/jwks.json", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)  # readiness polling of a real process, bounded by the deadline
    pytest.fail(f"tokenward serve did not answer within {STARTUP_SECONDS}s:\n{server.output()}")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    port = _free_port()
    store = f"sqlite:///{tmp_path / 'auth.db'}"
    with (
        (tmp_path / "stdout.log").open("wb") as stdout,
        (tmp_path / "stderr.log").open("wb") as stderr,
    ):
        process = subprocess.Popen(  # noqa: S603 - a fixed interpreter and test-controlled argv
            [*_CLI, "serve", "--host", "127.0.0.1", "--port", str(port), "--store", store],
            stdout=stdout,
            stderr=stderr,
            env=_environment(),
            cwd=tmp_path,
        )
    running = Server(process, f"http://127.0.0.1:{port}", store, tmp_path)
    try:
        _wait_until_ready(running)
        yield running
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=STOP_SECONDS)


def _token(http: httpx.Client, **form: str) -> httpx.Response:
    return http.post("/oauth/token", data={"client_id": "default", **form})


def _login(http: httpx.Client) -> dict[str, Any]:
    response = _token(http, grant_type="password", username="ada", password=PASSWORD)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, Any] = response.json()
    return body


def _refresh(http: httpx.Client, refresh_token: str) -> httpx.Response:
    return _token(http, grant_type="refresh_token", refresh_token=refresh_token)


def _userinfo(http: httpx.Client, access_token: str) -> httpx.Response:
    return http.get("/userinfo", headers={"Authorization": f"Bearer {access_token}"})


def _assert_invalid_grant(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_grant"


def _login_refresh_and_reuse(http: httpx.Client) -> list[dict[str, Any]]:
    """Log in, use the access token, refresh; then replay the superseded refresh token."""
    first = _login(http)
    assert (first["token_type"], first["scope"]) == ("Bearer", "read")
    assert first["expires_in"] > 0
    me = _userinfo(http, first["access_token"])
    assert me.status_code == 200, me.text
    assert me.json()["scopes"] == ["read"]
    rotated = _refresh(http, first["refresh_token"])
    assert rotated.status_code == 200, rotated.text
    second: dict[str, Any] = rotated.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert _userinfo(http, second["access_token"]).status_code == 200

    # With the reuse grace at 0 a replay is reuse: the whole session is revoked.
    _assert_invalid_grant(_refresh(http, first["refresh_token"]))
    _assert_invalid_grant(_refresh(http, second["refresh_token"]))
    assert _userinfo(http, second["access_token"]).status_code == 401
    return [first, second]


def _login_and_logout(http: httpx.Client) -> dict[str, Any]:
    pair = _login(http)
    logout = http.post("/logout", headers={"Authorization": f"Bearer {pair['access_token']}"})
    assert logout.status_code in (200, 204), logout.text
    _assert_invalid_grant(_refresh(http, pair["refresh_token"]))
    assert _userinfo(http, pair["access_token"]).status_code == 401
    return pair


def _revoked_from_the_cli(server: Server, http: httpx.Client) -> dict[str, Any]:
    """Revoke a live session from another process; the server learns it from the feed."""
    pair = _login(http)
    listed = server.cli("sessions", "list", "--user", "ada", "--json")
    assert listed.returncode == 0, listed.stderr
    sid = jwt.inspect_unverified(pair["access_token"]).claims["sid"]
    assert [session["sid"] for session in json.loads(listed.stdout)] == [sid]
    revoked = server.cli("sessions", "revoke", "--user", "ada")
    assert (revoked.returncode, revoked.stdout) == (0, "revoked 1 session of 'ada'\n")
    _assert_invalid_grant(_refresh(http, pair["refresh_token"]))
    deadline = time.monotonic() + FEED_SECONDS
    while _userinfo(http, pair["access_token"]).status_code == 200:
        assert time.monotonic() < deadline, "the revocation never reached the server"
        time.sleep(0.1)  # waiting for the feed poll of a real process, bounded
    return pair


def test_cli_user_logs_in_refreshes_is_caught_reusing_and_logs_out(server: Server) -> None:
    banner = server.output()
    assert f"listening on {server.url}" in banner
    assert f"add a user with: tokenward users add NAME --store {server.store}" in banner

    added = server.cli("users", "add", "ada", "--scope", "read", "--password-stdin", stdin=PASSWORD)
    assert added.returncode == 0, added.stderr

    with httpx.Client(base_url=server.url, timeout=10) as http:
        pairs = _login_refresh_and_reuse(http)
        pairs.append(_login_and_logout(http))
        pairs.append(_revoked_from_the_cli(server, http))

    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=STOP_SECONDS) == 0
    output = server.output()
    assert "tokenward: stopped" in output
    assert "Traceback" not in output
    assert PASSWORD not in output
    for pair in pairs:
        for token in (pair["access_token"], pair["refresh_token"]):
            for part in token.split("."):
                assert part not in output


def test_sigint_stops_the_server_with_status_0(server: Server) -> None:
    server.process.send_signal(signal.SIGINT)
    assert server.process.wait(timeout=STOP_SECONDS) == 0
    assert "tokenward: stopped" in server.output()
