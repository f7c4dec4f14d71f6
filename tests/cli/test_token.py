"""``tokenward token encode``, ``inspect`` and ``verify``."""

from __future__ import annotations

import io
import json
import sys
import time
from pathlib import Path

import pytest

from tokenward.jose import Key, jwt
from tokenward.jose._b64 import b64u_encode

from .support import CLI, NOW, write_jwk, write_jwks

# -- round trips through the command line -----------------------------------------------


@pytest.mark.parametrize("alg", ["ES256", "EdDSA", "HS256", "RS256"])
def test_generate_encode_verify_round_trip(cli: CLI, tmp_path: Path, alg: str) -> None:
    private = str(tmp_path / "signing.jwk")
    assert cli("keys", "generate", "--alg", alg, "--out", private).status == 0
    if alg == "HS256":
        verify_with = private  # a shared secret verifies with itself
    else:
        public = cli("keys", "public", private)
        assert public.status == 0
        verify_with = str(tmp_path / "signing.pub.jwk")
        Path(verify_with).write_text(public.out)

    encoded = cli(
        "token",
        "encode",
        "--key",
        private,
        "--sub",
        "ada",
        "--aud",
        "api",
        "--iss",
        "https://auth.example",
        "--exp-in",
        "15m",
        "--now",
        str(NOW),
    )
    assert encoded.status == 0
    token = encoded.out.strip()
    assert encoded.out == token + "\n"

    verified = cli(
        "token",
        "verify",
        token,
        "--key",
        verify_with,
        "--alg",
        alg,
        "--aud",
        "api",
        "--iss",
        "https://auth.example",
        "--now",
        str(NOW + 60),
    )
    assert verified.status == 0, verified.err
    assert verified.err == ""
    assert verified.json() == {
        "iat": NOW,
        "sub": "ada",
        "aud": "api",
        "iss": "https://auth.example",
        "exp": NOW + 900,
    }


# -- encode ---------------------------------------------------------------------------


def _encode(cli: CLI, key_file: str, *argv: str, stdin: str | None = None) -> str:
    result = cli("token", "encode", "--key", key_file, "--now", str(NOW), *argv, stdin=stdin)
    assert result.status == 0, result.err
    return result.out.strip()


def _claims(token: str) -> dict[str, object]:
    return jwt.inspect_unverified(token).claims


@pytest.mark.parametrize(
    ("exp_in", "seconds"),
    [("90", 90), ("90s", 90), ("15m", 900), ("1h", 3600), ("2d", 172800), ("1w", 604800)],
)
def test_encode_exp_in_durations(cli: CLI, private_file: str, exp_in: str, seconds: int) -> None:
    assert _claims(_encode(cli, private_file, "--exp-in", exp_in)) == {
        "iat": NOW,
        "exp": NOW + seconds,
    }


@pytest.mark.parametrize("exp_in", ["0", "0m", "-5", "15x", "1.5h", "h", "1h30m"])
def test_encode_refuses_bad_durations(cli: CLI, private_file: str, exp_in: str) -> None:
    result = cli("token", "encode", "--key", private_file, "--exp-in", exp_in)
    assert result.status == 2
    assert "--exp-in" in result.error_line()


def test_encode_iat_defaults_to_the_clock(cli: CLI, private_file: str) -> None:
    before = int(time.time())
    result = cli("token", "encode", "--key", private_file, "--exp-in", "60")
    after = int(time.time())
    claims = _claims(result.out.strip())
    iat = claims["iat"]
    assert isinstance(iat, int)
    assert before <= iat <= after
    assert claims["exp"] == iat + 60


def test_encode_flags_override_claims_json(cli: CLI, private_file: str) -> None:
    token = _encode(
        cli,
        private_file,
        "--claims",
        '{"sub": "eve", "scope": "read", "exp": 1}',
        "--sub",
        "ada",
        "--exp-in",
        "60",
    )
    assert _claims(token) == {"sub": "ada", "scope": "read", "exp": NOW + 60, "iat": NOW}


def test_encode_iat_in_claims_json_is_kept(cli: CLI, private_file: str) -> None:
    assert _claims(_encode(cli, private_file, "--claims", '{"iat": 5}'))["iat"] == 5


def test_encode_claims_from_file_and_stdin(cli: CLI, private_file: str, tmp_path: Path) -> None:
    path = tmp_path / "claims.json"
    path.write_text('{"scope": "write"}')
    assert _claims(_encode(cli, private_file, "--claims", f"@{path}"))["scope"] == "write"
    from_stdin = _encode(cli, private_file, "--claims", "@-", stdin='{"scope": "admin"}\n')
    assert _claims(from_stdin)["scope"] == "admin"


def test_encode_repeated_aud_is_a_list(cli: CLI, private_file: str) -> None:
    token = _encode(cli, private_file, "--aud", "api", "--aud", "admin")
    assert _claims(token)["aud"] == ["api", "admin"]


def test_encode_header_typ_and_kid(cli: CLI, private_file: str, es256_key: Key) -> None:
    header = jwt.inspect_unverified(_encode(cli, private_file)).header
    assert header == {"alg": "ES256", "kid": es256_key.kid, "typ": "JWT"}
    header = jwt.inspect_unverified(_encode(cli, private_file, "--typ", "at+jwt")).header
    assert header["typ"] == "at+jwt"
    assert "typ" not in jwt.inspect_unverified(_encode(cli, private_file, "--typ", "")).header


def test_encode_kid_for_a_key_without_one(cli: CLI, tmp_path: Path) -> None:
    jwk = Key.generate("EdDSA").to_jwk(private=True)
    del jwk["kid"]
    path = tmp_path / "nokid.jwk"
    path.write_text(json.dumps(jwk))
    header = jwt.inspect_unverified(_encode(cli, str(path), "--kid", "k1")).header
    assert header["kid"] == "k1"


def test_encode_unbound_key_needs_alg(cli: CLI, tmp_path: Path) -> None:
    jwk = Key.generate("ES256").to_jwk(private=True)
    del jwk["alg"]
    path = str(tmp_path / "unbound.jwk")
    Path(path).write_text(json.dumps(jwk))
    result = cli("token", "encode", "--key", path)
    assert result.status == 2
    assert result.error_line().endswith("names no alg; pass --alg")
    assert jwt.inspect_unverified(_encode(cli, path, "--alg", "ES256")).header["alg"] == "ES256"


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        pytest.param(
            ["--kid", "other"],
            "error: usage_error: --kid differs from the kid in the key file",
            id="kid-mismatch",
        ),
        pytest.param(
            ["--alg", "ES384"],
            "error: invalid_key: JWK is bound to ES256, not ES384",
            id="alg-mismatch",
        ),
        pytest.param(
            ["--claims", "{"],
            "error: usage_error: --claims is not valid JSON"
            " (Expecting property name enclosed in double quotes at line 1 column 2)",
            id="bad-json",
        ),
        pytest.param(
            ["--claims", "[]"], "error: usage_error: --claims must be a JSON object", id="array"
        ),
        pytest.param(
            ["--claims", '{"a": 1, "a": 2}'],
            "error: usage_error: --claims has duplicate member names",
            id="duplicate",
        ),
        pytest.param(
            ["--claims", '{"exp": "tomorrow"}'],
            "error: configuration_error: claim 'exp' must be a number of seconds",
            id="exp-type",
        ),
        pytest.param(
            ["--claims", "@/nonexistent/claims.json"],
            "error: usage_error: cannot read claims file '/nonexistent/claims.json':"
            " No such file or directory",
            id="missing-file",
        ),
    ],
)
def test_encode_refuses_bad_input(cli: CLI, private_file: str, argv: list[str], line: str) -> None:
    result = cli("token", "encode", "--key", private_file, *argv)
    assert result.status == 2
    assert result.error_line() == line
    assert result.out == ""


def test_encode_with_a_public_key_is_refused(cli: CLI, public_file: str) -> None:
    result = cli("token", "encode", "--key", public_file)
    assert result.status == 2
    assert "holds a public key; signing needs the private key" in result.error_line()


def test_encode_with_a_jwks_points_to_the_right_option(cli: CLI, tmp_path: Path) -> None:
    path = write_jwks(tmp_path / "keys.jwks", Key.generate("ES256"))
    result = cli("token", "encode", "--key", path)
    assert result.status == 2
    assert "holds a JWKS" in result.error_line()


# -- inspect --------------------------------------------------------------------------


def test_inspect_is_labelled_unverified(cli: CLI, es256_key: Key) -> None:
    token = jwt.encode({"sub": "ada", "exp": NOW}, es256_key)
    result = cli("token", "inspect", token)
    assert result.status == 0
    assert result.json() == {
        "header": {"alg": "ES256", "kid": es256_key.kid, "typ": "JWT"},
        "claims": {"sub": "ada", "exp": NOW},
        "verified": False,
    }
    assert "NOT verified" in result.error_line()


def test_inspect_reads_stdin(cli: CLI, es256_key: Key) -> None:
    token = jwt.encode({"sub": "ada"}, es256_key)
    result = cli("token", "inspect", stdin=f"\n  {token}\n")
    assert result.status == 0
    assert result.json()["claims"] == {"sub": "ada"}


def test_inspect_shows_a_token_that_would_not_verify(cli: CLI) -> None:
    # Expired and signed by an unknown key: looking inside is what inspect is for.
    token = jwt.encode({"sub": "ada", "exp": 1}, Key.generate("HS256"))
    assert cli("token", "inspect", token).json()["claims"] == {"sub": "ada", "exp": 1}


@pytest.mark.parametrize("token", ["not-a-token", "a.b", "e30.e30.e30.e30.e30", "eyJ.x.y"])
def test_inspect_malformed_exits_1(cli: CLI, token: str) -> None:
    result = cli("token", "inspect", token)
    assert result.status == 1
    assert result.error_line().startswith("error: malformed_token: ")
    assert result.out == ""


# -- verify ---------------------------------------------------------------------------


def _token(key: Key, **claims: object) -> str:
    return jwt.encode({"sub": "ada", "iat": NOW, "exp": NOW + 600, **claims}, key)


def _verify(cli: CLI, key_file: str, *argv: str, stdin: str | None = None) -> tuple[int, str]:
    result = cli("token", "verify", "--key", key_file, "--now", str(NOW), *argv, stdin=stdin)
    if result.status == 0:
        assert result.err == ""
        return 0, result.out
    assert result.out == ""
    return result.status, result.error_line()


def test_verify_reads_stdin_and_strips_the_newline(
    cli: CLI, es256_key: Key, public_file: str
) -> None:
    token = _token(es256_key)
    status, out = _verify(cli, public_file, "--alg", "ES256", stdin=f"  {token}\n\n")
    assert status == 0
    assert json.loads(out)["sub"] == "ada"
    status, out = _verify(cli, public_file, "--alg", "ES256", "-", stdin=token + "\n")
    assert status == 0


def test_verify_does_not_strip_a_token_argument(cli: CLI, es256_key: Key, public_file: str) -> None:
    status, line = _verify(cli, public_file, "--alg", "ES256", _token(es256_key) + "\n")
    assert status == 1
    assert line.startswith("error: malformed_token: ")


def test_verify_with_empty_stdin_is_a_usage_error(cli: CLI, public_file: str) -> None:
    status, line = _verify(cli, public_file, "--alg", "ES256", stdin="\n")
    assert status == 2
    assert line == "error: usage_error: no token given: pass TOKEN or pipe it on stdin"


def test_verify_accepts_a_private_key_file(cli: CLI, es256_key: Key, private_file: str) -> None:
    assert _verify(cli, private_file, "--alg", "ES256", _token(es256_key))[0] == 0


@pytest.mark.parametrize(
    ("claims", "argv", "line"),
    [
        pytest.param({"exp": NOW}, [], "error: token_expired: token has expired", id="expired"),
        pytest.param(
            {"nbf": NOW + 60}, [], "error: token_not_yet_valid: token is not valid yet", id="nbf"
        ),
        pytest.param(
            {"aud": "api"},
            [],
            "error: invalid_claim: token has an audience but none is expected",
            id="unexpected-aud",
        ),
        pytest.param(
            {"aud": "api"},
            ["--aud", "web"],
            "error: invalid_claim: token audience is not accepted",
            id="wrong-aud",
        ),
        pytest.param(
            {}, ["--aud", "api"], "error: missing_claim: token has no audience", id="missing-aud"
        ),
        pytest.param(
            {"iss": "https://evil"},
            ["--iss", "https://auth"],
            "error: invalid_claim: token issuer is not accepted",
            id="wrong-iss",
        ),
        pytest.param(
            {}, ["--require", "jti"], "error: missing_claim: claim 'jti' is required", id="require"
        ),
        pytest.param(
            {"jti": "j"},
            ["--require", "jti,sid"],
            "error: missing_claim: claim 'sid' is required",
            id="require-comma",
        ),
        pytest.param(
            {},
            ["--typ", "at+jwt"],
            "error: invalid_typ: token typ is not the expected type",
            id="typ",
        ),
        pytest.param({}, ["--alg", "ES384"], None, id="accepted-with-extra-alg"),
    ],
)
def test_verify_claim_checks(
    cli: CLI,
    es256_key: Key,
    public_file: str,
    *,
    claims: dict[str, object],
    argv: list[str],
    line: str | None,
) -> None:
    token = _token(es256_key, **claims)
    status, output = _verify(cli, public_file, "--alg", "ES256", *argv, token)
    if line is None:
        assert status == 0
    else:
        assert (status, output) == (1, line)
        assert token not in output


def test_verify_all_options_accepting(cli: CLI, es256_key: Key, public_file: str) -> None:
    token = jwt.encode(
        {"sub": "ada", "aud": ["api", "web"], "iss": "https://auth", "exp": NOW, "jti": "j"},
        es256_key,
        typ="at+jwt",
    )
    status, out = _verify(
        cli,
        public_file,
        token,
        "--alg",
        "ES256",
        "--aud",
        "web",
        "--iss",
        "https://x",
        "--iss",
        "https://auth",
        "--typ",
        "application/at+jwt",
        "--require",
        "jti",
        "--leeway",
        "30",
    )
    assert status == 0
    assert json.loads(out)["jti"] == "j"


def test_verify_leeway_is_capped(cli: CLI, es256_key: Key, public_file: str) -> None:
    status, line = _verify(cli, public_file, "--alg", "ES256", "--leeway", "301", "t.t.t")
    assert (status, line) == (
        2,
        "error: configuration_error: leeway must be between 0 and 300 seconds",
    )


def test_verify_alg_not_in_allow_list(cli: CLI, es256_key: Key, public_file: str) -> None:
    status, line = _verify(cli, public_file, "--alg", "EdDSA", _token(es256_key))
    assert (status, line) == (
        1,
        "error: algorithm_not_allowed: token alg is absent, malformed or not allowed",
    )


def test_verify_refuses_alg_none_token(cli: CLI, es256_key: Key, public_file: str) -> None:
    header = b64u_encode(b'{"alg":"none","typ":"JWT"}')
    payload = b64u_encode(b'{"sub":"admin"}')
    token = f"{header}.{payload}."
    status, line = _verify(cli, public_file, "--alg", "ES256", token)
    assert status == 1
    assert line.startswith("error: algorithm_not_allowed: ")


def test_verify_refuses_forged_payload(cli: CLI, es256_key: Key, public_file: str) -> None:
    header, _, signature = _token(es256_key).split(".")
    forged = b64u_encode(json.dumps({"sub": "admin", "exp": NOW + 600}).encode())
    status, line = _verify(cli, public_file, "--alg", "ES256", f"{header}.{forged}.{signature}")
    assert (status, line) == (1, "error: bad_signature: signature verification failed")


def test_verify_refuses_key_confusion_hs256_with_public_key(
    cli: CLI, tmp_path: Path, es256_key: Key, public_file: str
) -> None:
    # The public JWK's text used as an HMAC secret (CVE-2015-9235 family).
    secret = Path(public_file).read_bytes()
    forged = jwt.encode({"sub": "admin"}, Key.from_secret(secret, alg="HS256"))
    status, line = _verify(cli, public_file, "--alg", "HS256", forged)
    assert status == 1
    assert line.startswith("error: key_mismatch: ")


def test_verify_with_another_key_fails(cli: CLI, tmp_path: Path, es256_key: Key) -> None:
    other = write_jwk(tmp_path / "other.jwk", Key.generate("ES256", kid=es256_key.kid).public_key())
    status, line = _verify(cli, other, "--alg", "ES256", _token(es256_key))
    assert (status, line) == (1, "error: bad_signature: signature verification failed")


def test_verify_jwks_selects_by_kid(cli: CLI, tmp_path: Path) -> None:
    first, second = Key.generate("ES256"), Key.generate("EdDSA")
    jwks = write_jwks(tmp_path / "keys.jwks", first, second)
    argv = (
        "token",
        "verify",
        "--jwks",
        jwks,
        "--alg",
        "ES256",
        "--alg",
        "EdDSA",
        "--now",
        str(NOW),
    )
    assert cli(*argv, _token(second)).status == 0
    assert cli(*argv, _token(first)).status == 0
    stranger = cli(*argv, _token(Key.generate("EdDSA")))
    assert stranger.status == 1
    assert stranger.error_line() == "error: key_not_found: no key matches the token's kid"


@pytest.mark.parametrize(
    ("option", "content", "line"),
    [
        pytest.param(
            "--key", '{"keys": []}', "holds a JWKS; pass it with --jwks", id="jwks-as-key"
        ),
        pytest.param(
            "--jwks",
            '{"kty": "oct", "k": "x"}',
            "holds a single JWK; pass it with --key",
            id="key-as-jwks",
        ),
        pytest.param(
            "--key",
            '{"kty": "oct", "k": "c2hvcnQ"}',
            "HMAC keys must be at least 32 octets",
            id="short-hmac",
        ),
    ],
)
def test_verify_refuses_wrong_key_files(
    cli: CLI, tmp_path: Path, option: str, content: str, line: str
) -> None:
    path = tmp_path / "key.json"
    path.write_text(content)
    result = cli("token", "verify", option, str(path), "--alg", "HS256", "t.t.t")
    assert result.status == 2
    assert line in result.error_line()


def test_verify_loads_the_key_before_reading_stdin(cli: CLI, tmp_path: Path) -> None:
    # A missing key file fails fast, without waiting for a token on stdin.
    result = cli("token", "verify", "--key", str(tmp_path / "absent"), "--alg", "ES256", stdin="")
    assert result.status == 2
    assert "cannot read key file" in result.error_line()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_verify_from_a_terminal_says_it_waits_for_stdin(
    cli: CLI, es256_key: Key, public_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", _Terminal(_token(es256_key) + "\n"))
    result = cli("token", "verify", "--key", public_file, "--alg", "ES256", "--now", str(NOW))
    assert result.status == 0
    assert result.err == "reading the token from stdin (paste it, then press Ctrl-D)\n"


def test_verify_with_closed_stdin_is_a_usage_error(
    cli: CLI, public_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", None)
    result = cli("token", "verify", "--key", public_file, "--alg", "ES256")
    assert result.status == 2
    assert result.error_line() == "error: usage_error: cannot read token: stdin is closed"


def test_verify_with_binary_stdin_is_a_usage_error(
    cli: CLI, public_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"\xff\xfe"), encoding="utf-8"))
    result = cli("token", "verify", "--key", public_file, "--alg", "ES256")
    assert result.status == 2
    assert result.error_line() == "error: usage_error: token stdin is not UTF-8 text"
