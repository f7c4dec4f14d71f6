"""The installed ``tokenward`` console script, run as a real process.

These prove what in-process tests cannot: the entry point in pyproject.toml resolves,
exit statuses reach the shell, a token piped on stdin (with the newline ``echo`` adds)
verifies, and errors are one line with no traceback.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import tokenward

from .support import NOW


def _script() -> str:
    # The script sits next to the interpreter in a virtualenv; fall back to PATH.
    found = shutil.which("tokenward", path=str(Path(sys.executable).parent)) or shutil.which(
        "tokenward"
    )
    if found is None:
        pytest.fail("the tokenward console script is not installed; run pip install -e .")
    return found


def _run(*argv: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    # Arguments are test-controlled; no shell is involved.
    return subprocess.run(  # noqa: S603
        [_script(), *argv],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )


def test_version() -> None:
    result = _run("--version")
    assert (result.returncode, result.stdout) == (0, f"tokenward {tokenward.__version__}\n")


def test_generate_encode_verify_through_pipes(tmp_path: Path) -> None:
    private = tmp_path / "signing.jwk"
    generated = _run("keys", "generate", "--alg", "ES256", "--out", str(private))
    assert generated.returncode == 0, generated.stderr
    assert stat.S_IMODE(private.stat().st_mode) == 0o600

    public = _run("keys", "public", "-", stdin=private.read_text())
    assert public.returncode == 0, public.stderr
    assert '"d"' not in public.stdout
    public_file = tmp_path / "signing.pub.jwk"
    public_file.write_text(public.stdout)

    encoded = _run(
        "token",
        "encode",
        "--key",
        str(private),
        "--sub",
        "ada",
        "--aud",
        "api",
        "--exp-in",
        "15m",
        "--now",
        str(NOW),
    )
    assert encoded.returncode == 0, encoded.stderr
    token = encoded.stdout  # ends with a newline, as a shell pipe would carry it

    verify = ("token", "verify", "--key", str(public_file), "--alg", "ES256", "--aud", "api")
    ok = _run(*verify, "--now", str(NOW + 1), stdin=token)
    assert ok.returncode == 0, ok.stderr
    assert '"sub": "ada"' in ok.stdout
    assert ok.stderr == ""

    expired = _run(*verify, "--now", str(NOW + 900), stdin=token)
    assert expired.returncode == 1
    assert expired.stdout == ""
    assert expired.stderr == "error: token_expired: token has expired\n"

    inspected = _run("token", "inspect", stdin=token)
    assert inspected.returncode == 0
    assert '"verified": false' in inspected.stdout
    assert "NOT verified" in inspected.stderr


def test_usage_and_key_errors_exit_2_without_traceback(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.jwk"
    garbage.write_text("not json")
    for argv in (
        ("keys", "generate", "--alg", "none"),
        ("token", "verify", "--key", str(garbage), "--alg", "ES256", "a.b.c"),
        ("token", "verify", "--key", str(tmp_path / "absent.jwk"), "--alg", "ES256", "a.b.c"),
    ):
        result = _run(*argv)
        assert result.returncode == 2, argv
        assert result.stderr.startswith("error: ")
        assert result.stderr.count("\n") == 1
        assert "Traceback" not in result.stderr


def test_a_password_piped_as_bytes_that_are_not_utf8_is_one_error_line(tmp_path: Path) -> None:
    # Python reads stdin with errors="surrogateescape" under a C or POSIX locale and in
    # UTF-8 mode; PYTHONIOENCODING makes it so whatever the test machine's locale.
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENWARD_")}
    env.update(
        PYTHONWARNINGS="error",
        PYTHONIOENCODING="utf-8:surrogateescape",
        TOKENWARD_STORE=f"sqlite:///{tmp_path / 'auth.db'}",
    )
    result = subprocess.run(  # noqa: S603 - the installed script and test argv
        [_script(), "users", "add", "bin", "--password-stdin"],
        input=b"\xff\xfeabcdefgh\n",
        capture_output=True,
        check=False,
        timeout=60,
        env=env,
    )
    assert (result.returncode, result.stdout) == (2, b"")
    assert result.stderr == b"error: usage_error: password stdin is not UTF-8 text\n"
