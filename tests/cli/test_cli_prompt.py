"""Password prompts on a real terminal: ``users add`` and ``set-password`` without --password-stdin.

The command runs as a process whose controlling terminal is a pseudo-terminal that the
test types into, as a person would; the password must not be echoed.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .server_support import FAST_ARGON2, PASSWORD, isolate_environment, login, sqlite_url

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")

TIMEOUT = 30.0
# Make the pseudo-terminal the controlling terminal (getpass opens /dev/tty), then run.
_TTY_MAIN = (
    "import fcntl, termios\n"
    "fcntl.ioctl(0, termios.TIOCSCTTY, 0)\n"
    "from tokenward.cli import main\n"
    "raise SystemExit(main())\n"
)


class Terminal:
    """A ``tokenward`` process on a pseudo-terminal, and what it has written so far."""

    def __init__(self, *argv: str, cwd: Path) -> None:
        self._master, slave = os.openpty()
        env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENWARD_")}
        env.update(FAST_ARGON2)
        self.process = subprocess.Popen(  # noqa: S603 - a fixed interpreter and test argv
            [sys.executable, "-c", _TTY_MAIN, *argv],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
            env=env,
            cwd=cwd,
        )
        os.close(slave)
        self.transcript = b""
        self._deadline = time.monotonic() + TIMEOUT

    def _read(self) -> bool:
        left = self._deadline - time.monotonic()
        assert left > 0, f"timed out; the terminal shows {self.transcript!r}"
        ready, _, _ = select.select([self._master], [], [], left)
        if not ready:
            return True
        try:
            chunk = os.read(self._master, 4096)
        except OSError:  # EIO: the process closed the terminal
            return False
        self.transcript += chunk
        return bool(chunk)

    def expect(self, prompt: bytes) -> None:
        """Wait until ``prompt`` appears (getpass flushes typed-ahead input, so wait)."""
        while prompt not in self.transcript:
            assert self._read(), f"no {prompt!r} before the end: {self.transcript!r}"

    def type(self, line: str | bytes) -> None:
        """Type ``line`` and Enter."""
        os.write(self._master, (line if isinstance(line, bytes) else line.encode()) + b"\n")

    def finish(self) -> tuple[int, str]:
        """Read to the end; return the exit status and everything the terminal showed."""
        while self._read():
            pass
        os.close(self._master)
        return self.process.wait(timeout=TIMEOUT), self.transcript.decode()


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    isolate_environment(monkeypatch)
    return sqlite_url(tmp_path)


def _add_with_prompt(tmp_path: Path, store: str, first: str, second: str) -> tuple[int, str]:
    terminal = Terminal("users", "add", "ada", "--store", store, cwd=tmp_path)
    terminal.expect(b"Password: ")
    terminal.type(first)
    terminal.expect(b"Password (again): ")
    terminal.type(second)
    return terminal.finish()


def test_add_prompts_twice_without_echo(tmp_path: Path, store: str) -> None:
    status, shown = _add_with_prompt(tmp_path, store, PASSWORD, PASSWORD)
    assert status == 0, shown
    assert "created user 'ada'" in shown
    assert PASSWORD not in shown
    assert login(store, "ada").sid


def test_add_refuses_two_different_passwords(tmp_path: Path, store: str) -> None:
    status, shown = _add_with_prompt(tmp_path, store, PASSWORD, PASSWORD + "!")
    assert status == 2
    assert "error: usage_error: the two passwords differ; nothing was changed" in shown
    assert PASSWORD not in shown


def test_add_refuses_a_typed_password_that_is_not_utf8(tmp_path: Path, store: str) -> None:
    terminal = Terminal("users", "add", "ada", "--store", store, cwd=tmp_path)
    terminal.expect(b"Password: ")
    terminal.type(b"\xff\xfeabcdefgh")
    status, shown = terminal.finish()
    assert status == 2, shown
    assert "error: usage_error: the password typed is not UTF-8 text" in shown
    assert "Traceback" not in shown


def test_set_password_prompts_too(tmp_path: Path, store: str) -> None:
    assert _add_with_prompt(tmp_path, store, PASSWORD, PASSWORD)[0] == 0
    terminal = Terminal("users", "set-password", "ada", "--store", store, cwd=tmp_path)
    terminal.expect(b"Password: ")
    terminal.type("a brand new password")
    terminal.expect(b"Password (again): ")
    terminal.type("a brand new password")
    status, shown = terminal.finish()
    assert status == 0, shown
    assert "changed the password of 'ada'; revoked 0 sessions" in shown
    assert login(store, "ada", "a brand new password").sid
