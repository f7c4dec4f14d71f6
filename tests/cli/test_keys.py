"""``tokenward keys generate`` and ``tokenward keys public``."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tokenward.jose import Key

from .support import CLI, write_jwk, write_jwks

ALGS = ["ES256", "ES384", "ES256K", "EdDSA", "Ed448", "HS256", "HS512", "RS256", "PS256"]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """Run with umask 000, so that only the code can keep a file private."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


# -- generate -------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ALGS)
def test_generate_prints_a_private_jwk_bound_to_alg(cli: CLI, alg: str) -> None:
    result = cli("keys", "generate", "--alg", alg)
    assert result.status == 0
    assert result.err == ""
    jwk = result.json()
    key = Key.from_jwk(jwk)
    assert key.is_private
    assert key.alg == alg
    assert "d" in jwk or "k" in jwk


def test_generate_kid_defaults_to_rfc7638_thumbprint(cli: CLI) -> None:
    key = Key.from_jwk(cli("keys", "generate", "--alg", "EdDSA").json())
    assert key.kid == key.thumbprint()


def test_generate_uses_given_kid(cli: CLI) -> None:
    assert cli("keys", "generate", "--alg", "ES256", "--kid", "2026-11").json()["kid"] == "2026-11"


def test_generate_rsa_bits(cli: CLI) -> None:
    jwk = cli("keys", "generate", "--alg", "PS256", "--rsa-bits", "3072").json()
    assert Key.from_jwk(jwk).to_pem().startswith(b"-----BEGIN PUBLIC KEY")
    assert len(jwk["n"]) == 512  # 384 octets of modulus, base64url


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        pytest.param(["--alg", "ES256", "--rsa-bits", "4096"], "usage_error", id="rsa-bits-on-ec"),
        pytest.param(["--alg", "RS256", "--rsa-bits", "1024"], "invalid_key", id="rsa-too-small"),
        pytest.param(["--alg", "ES256", "--force"], "usage_error", id="force-without-out"),
        pytest.param(["--alg", "ES256", "--kid", ""], "usage_error", id="empty-kid"),
    ],
)
def test_generate_refuses_bad_options(cli: CLI, argv: list[str], code: str) -> None:
    result = cli("keys", "generate", *argv)
    assert result.status == 2
    assert result.error_line().startswith(f"error: {code}: ")
    assert result.out == ""


def test_generate_out_writes_mode_0600_even_with_umask_000(
    cli: CLI, tmp_path: Path, permissive_umask: None
) -> None:
    out = tmp_path / "signing.jwk"
    result = cli("keys", "generate", "--alg", "ES256", "--out", str(out))
    assert result.status == 0
    assert _mode(out) == 0o600
    key = Key.from_jwk(json.loads(out.read_text()))
    assert key.is_private
    # The private key goes to the file only; stderr says where, by kid.
    assert result.out == ""
    assert str(out) in result.err
    assert f"kid {key.kid}" in result.err


def test_generate_out_refuses_to_overwrite(cli: CLI, tmp_path: Path) -> None:
    out = tmp_path / "signing.jwk"
    out.write_text("keep me")
    result = cli("keys", "generate", "--alg", "ES256", "--out", str(out))
    assert result.status == 2
    assert "already exists; pass --force" in result.error_line()
    assert out.read_text() == "keep me"


def test_generate_force_replaces_with_a_private_file(
    cli: CLI, tmp_path: Path, permissive_umask: None
) -> None:
    out = tmp_path / "signing.jwk"
    out.write_text("old")
    out.chmod(0o644)
    result = cli("keys", "generate", "--alg", "ES256", "--out", str(out), "--force")
    assert result.status == 0
    assert _mode(out) == 0o600
    assert Key.from_jwk(json.loads(out.read_text())).alg == "ES256"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["signing.jwk"]


def test_generate_does_not_write_through_a_planted_symlink(cli: CLI, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("untouched")
    link = tmp_path / "signing.jwk"
    link.symlink_to(victim)
    result = cli("keys", "generate", "--alg", "ES256", "--out", str(link))
    assert result.status == 2
    assert victim.read_text() == "untouched"


def test_generate_out_in_missing_directory_is_a_usage_error(cli: CLI, tmp_path: Path) -> None:
    result = cli("keys", "generate", "--alg", "ES256", "--out", str(tmp_path / "no" / "k.jwk"))
    assert result.status == 2
    assert "cannot write" in result.error_line()


# -- public ---------------------------------------------------------------------------


def test_public_prints_the_public_jwk(cli: CLI, private_file: str, es256_key: Key) -> None:
    result = cli("keys", "public", private_file)
    assert result.status == 0
    assert result.json() == es256_key.public_key().to_jwk()
    assert "d" not in result.json()


def test_public_reads_stdin(cli: CLI, es256_key: Key) -> None:
    stdin = json.dumps(es256_key.to_jwk(private=True))
    result = cli("keys", "public", "-", stdin=stdin)
    assert result.status == 0
    assert result.json() == es256_key.public_key().to_jwk()


def test_public_of_a_jwks_is_a_public_jwks(cli: CLI, tmp_path: Path) -> None:
    keys = [Key.generate("ES256"), Key.generate("EdDSA"), Key.generate("RS256")]
    path = tmp_path / "keys.jwks"
    path.write_text(json.dumps({"keys": [key.to_jwk(private=True) for key in keys]}))
    result = cli("keys", "public", str(path))
    assert result.status == 0
    assert result.json() == {"keys": [key.public_key().to_jwk() for key in keys]}
    assert '"d"' not in result.out


def test_public_of_a_public_jwks_is_unchanged(cli: CLI, tmp_path: Path) -> None:
    keys = [Key.generate("ES256"), Key.generate("EdDSA")]
    path = write_jwks(tmp_path / "keys.jwks", *keys)
    assert cli("keys", "public", path).json() == json.loads(Path(path).read_text())


def test_public_refuses_hmac_without_printing_the_secret(cli: CLI, tmp_path: Path) -> None:
    key = Key.generate("HS256")
    path = write_jwk(tmp_path / "secret.jwk", key)
    result = cli("keys", "public", path)
    assert result.status == 2
    assert result.error_line() == "error: invalid_key: an HMAC key has no public part"
    assert key.to_jwk(private=True)["k"] not in result.out + result.err


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        pytest.param("SECRET-not-json", "is not valid JSON (Expecting value", id="not-json"),
        pytest.param("[1, 2]", "must be a JSON object", id="array"),
        pytest.param('{"kty": "oct", "k": "a", "k": "b"}', "duplicate member", id="duplicate"),
        pytest.param('{"kty": "EC", "x": NaN}', "NaN", id="nan"),
        pytest.param('{"kty": "none"}', "kty 'none' is not supported", id="unknown-kty"),
        pytest.param('{"keys": "nope"}', "needs a 'keys' array", id="bad-jwks"),
    ],
)
def test_public_refuses_bad_key_files(
    cli: CLI, tmp_path: Path, content: str, fragment: str
) -> None:
    path = tmp_path / "bad.jwk"
    path.write_text(content)
    result = cli("keys", "public", str(path))
    assert result.status == 2
    line = result.error_line()
    assert line.startswith("error: invalid_key: ")
    assert fragment in line
    # The file's text (which might be a secret) is never echoed.
    assert "SECRET" not in line


def test_public_missing_file_is_a_usage_error(cli: CLI, tmp_path: Path) -> None:
    result = cli("keys", "public", str(tmp_path / "absent.jwk"))
    assert result.status == 2
    assert result.error_line().startswith("error: usage_error: cannot read key file")


def test_public_refuses_oversized_input(cli: CLI, tmp_path: Path) -> None:
    path = tmp_path / "huge.jwk"
    path.write_text(" " * (1024 * 1024 + 1))
    result = cli("keys", "public", str(path))
    assert result.status == 2
    assert "key file is larger than 1 MiB" in result.error_line()
