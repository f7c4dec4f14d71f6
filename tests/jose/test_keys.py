"""Key and KeySet behaviour: validation, algorithm binding, use/key_ops, JWK/PEM export."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from tokenward.errors import (
    BadSignatureError,
    InvalidKeyError,
    KeyMismatchError,
    KeyNotFoundError,
    TokenwardError,
)
from tokenward.jose import Key, KeyResolver, KeySet, jws
from tokenward.jose._crypto import CURVE_ORDERS

RSA_ALGS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
PRIVATE_MEMBERS = frozenset({"k", "d", "p", "q", "dp", "dq", "qi"})


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def uint(value: int) -> str:
    return b64u(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def check(error: TokenwardError, cls: type[TokenwardError], code: str) -> None:
    assert type(error) is cls
    assert error.code == code


# Keys are generated once per module; RSA generation dominates the run time.
KEYS: dict[str, Key] = {
    alg: Key.generate(alg, kid=f"k-{alg}")
    for alg in (
        "HS256",
        "HS384",
        "HS512",
        "RS256",
        "PS512",
        "ES256",
        "ES384",
        "ES512",
        "ES256K",
        "EdDSA",
        "Ed25519",
        "Ed448",
    )
}
ASYMMETRIC = sorted(alg for alg, key in KEYS.items() if key.kty != "oct")
RSA_PRIVATE = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_JWK = {
    "kty": "RSA",
    "n": uint(RSA_PRIVATE.public_key().public_numbers().n),
    "e": uint(RSA_PRIVATE.public_key().public_numbers().e),
}
EC_PRIVATE = ec.generate_private_key(ec.SECP256R1())
RSA_1024 = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505


def ec_jwk(private: ec.EllipticCurvePrivateKey, crv: str, size: int) -> dict[str, str]:
    numbers = private.public_key().public_numbers()
    return {
        "kty": "EC",
        "crv": crv,
        "x": b64u(numbers.x.to_bytes(size, "big")),
        "y": b64u(numbers.y.to_bytes(size, "big")),
    }


EC_JWK = ec_jwk(EC_PRIVATE, "P-256", 32)
EC_PRIVATE_JWK = {**EC_JWK, "d": b64u(EC_PRIVATE.private_numbers().private_value.to_bytes(32))}


def es256_token(private: ec.EllipticCurvePrivateKey, kid: str | None = None) -> str:
    """An ES256 JWS signed directly with ``cryptography``, not with the codec."""
    header: dict[str, str] = {"alg": "ES256"}
    if kid is not None:
        header["kid"] = kid
    signing_input = f"{b64u(json.dumps(header).encode())}.{b64u(b'payload')}"
    r, s = decode_dss_signature(private.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return f"{signing_input}.{b64u(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def test_key_has_no_public_constructor() -> None:
    with pytest.raises(TypeError):
        Key()


# -- weak keys -------------------------------------------------------------------


@pytest.mark.parametrize(("alg", "size"), [("HS256", 32), ("HS384", 48), ("HS512", 64)])
def test_hmac_secret_shorter_than_hash_refused(alg: str, size: int) -> None:
    with pytest.raises(InvalidKeyError) as info:
        Key.from_secret(bytes(size - 1), alg=alg)
    check(info.value, InvalidKeyError, "invalid_key")
    with pytest.raises(InvalidKeyError):
        Key.from_jwk({"kty": "oct", "k": b64u(bytes(size - 1)), "alg": alg})
    assert Key.from_secret(bytes(size), alg=alg).algorithms == {alg}


def test_unbound_hmac_jwk_shorter_than_hs256_refused() -> None:
    with pytest.raises(InvalidKeyError) as info:
        Key.from_jwk({"kty": "oct", "k": b64u(bytes(31))})
    check(info.value, InvalidKeyError, "invalid_key")


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: Key.generate("RS256", rsa_bits=1024), id="generate"),
        pytest.param(
            lambda: Key.from_pem(
                RSA_1024.public_key().public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                )
            ),
            id="public-pem",
        ),
        pytest.param(
            lambda: Key.from_jwk(
                {"kty": "RSA", "n": uint(RSA_1024.public_key().public_numbers().n), "e": "AQAB"}
            ),
            id="jwk",
        ),
    ],
)
def test_rsa_1024_refused(make: Callable[[], Key]) -> None:
    with pytest.raises(InvalidKeyError) as info:
        make()
    check(info.value, InvalidKeyError, "invalid_key")


@pytest.mark.parametrize(
    "e",
    [
        pytest.param("AQ", id="e-1"),
        pytest.param("Ag", id="e-2-even"),
        pytest.param("AQAA", id="e-65536-even"),
        pytest.param(RSA_JWK["n"], id="e-equals-n"),
    ],
)
def test_rsa_bad_public_exponent_refused(e: str) -> None:
    with pytest.raises(InvalidKeyError) as info:
        Key.from_jwk({**RSA_JWK, "e": e})
    check(info.value, InvalidKeyError, "invalid_key")


def test_rsa_exponent_three_accepted() -> None:
    # RFC 8017 sec. 3.1 allows any odd e in [3, n-1]; 3 is legitimate, if unusual.
    private = rsa.generate_private_key(public_exponent=3, key_size=2048)
    jwk = {**RSA_JWK, "n": uint(private.public_key().public_numbers().n), "e": "Aw"}
    assert Key.from_jwk(jwk, alg="RS256").algorithms == {"RS256"}


# -- algorithm binding -------------------------------------------------------------


def test_bound_key_verifies_only_its_algorithm() -> None:
    key = Key.from_jwk(RSA_JWK, alg="RS256")
    assert key.algorithms == {"RS256"}
    # A PS256 signature by the very same RSA key, made with cryptography directly.
    signing_input = f"{b64u(json.dumps({'alg': 'PS256'}).encode())}.{b64u(b'payload')}"
    signature = RSA_PRIVATE.sign(
        signing_input.encode(),
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
        hashes.SHA256(),
    )
    token = f"{signing_input}.{b64u(signature)}"
    assert jws.verify(token, Key.from_jwk(RSA_JWK, alg="PS256"), algorithms=["PS256"])
    with pytest.raises(KeyMismatchError) as info:
        jws.verify(token, key, algorithms=sorted(RSA_ALGS))
    check(info.value, KeyMismatchError, "key_mismatch")


@pytest.mark.parametrize("alg", ["PS256", "RS384", "HS256", "ES256"])
def test_bound_key_signs_only_its_algorithm(alg: str) -> None:
    with pytest.raises(InvalidKeyError) as info:
        jws.sign(b"payload", KEYS["RS256"], alg=alg)
    check(info.value, InvalidKeyError, "invalid_key")


def test_bound_key_signs_with_its_algorithm_by_default() -> None:
    token = jws.sign(b"payload", KEYS["ES384"])
    header, payload = jws.verify_with_header(
        token, KEYS["ES384"].public_key(), algorithms=["ES384"]
    )
    assert header == {"alg": "ES384", "kid": "k-ES384"}
    assert payload == b"payload"


def test_jwk_alg_conflicting_with_requested_alg_refused() -> None:
    with pytest.raises(InvalidKeyError) as info:
        Key.from_jwk({**RSA_JWK, "alg": "RS256"}, alg="PS256")
    check(info.value, InvalidKeyError, "invalid_key")
    assert Key.from_jwk({**RSA_JWK, "alg": "RS256"}, alg="RS256").alg == "RS256"


def test_requested_alg_binds_an_unbound_jwk() -> None:
    key = Key.from_jwk(RSA_JWK, alg="PS384")
    assert key.alg == "PS384"
    assert key.algorithms == {"PS384"}


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: Key.generate("none"), id="generate-none"),
        pytest.param(lambda: Key.generate("RSA-OAEP"), id="generate-jwe-alg"),
        pytest.param(lambda: Key.generate("hs256"), id="generate-lowercase"),
        pytest.param(lambda: Key.from_secret(bytes(32), alg="RS256"), id="secret-for-rs256"),
        pytest.param(lambda: Key.from_secret(bytes(32), alg="none"), id="secret-for-none"),
        pytest.param(lambda: Key.from_jwk({**RSA_JWK, "alg": "none"}), id="jwk-alg-none"),
        pytest.param(lambda: Key.from_jwk({**RSA_JWK, "alg": "ES256"}), id="jwk-alg-other-kty"),
        pytest.param(lambda: Key.from_jwk({**RSA_JWK, "alg": 256}), id="jwk-alg-number"),
        pytest.param(lambda: Key.from_jwk(EC_JWK, alg="ES384"), id="ec-p256-bound-es384"),
        pytest.param(lambda: Key.from_jwk(EC_JWK, alg="ES256K"), id="ec-p256-bound-es256k"),
    ],
)
def test_unsupported_or_unfit_algorithm_refused(make: Callable[[], Key]) -> None:
    with pytest.raises(InvalidKeyError) as info:
        make()
    check(info.value, InvalidKeyError, "invalid_key")


# -- unbound keys: exactly the algorithms their type, curve and size fit ------------


def _unbound(alg: str) -> Key:
    jwk = KEYS[alg].to_jwk(private=True)
    del jwk["alg"]
    return Key.from_jwk(jwk)


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        pytest.param(lambda: _unbound("RS256"), RSA_ALGS, id="rsa-2048"),
        pytest.param(lambda: _unbound("ES256"), {"ES256"}, id="p-256"),
        pytest.param(lambda: _unbound("ES384"), {"ES384"}, id="p-384"),
        pytest.param(lambda: _unbound("ES512"), {"ES512"}, id="p-521"),
        pytest.param(lambda: _unbound("ES256K"), {"ES256K"}, id="secp256k1"),
        pytest.param(lambda: _unbound("EdDSA"), {"EdDSA", "Ed25519"}, id="ed25519"),
        pytest.param(lambda: _unbound("Ed448"), {"EdDSA", "Ed448"}, id="ed448"),
        pytest.param(lambda: _unbound("HS256"), {"HS256"}, id="oct-32"),
        pytest.param(lambda: _unbound("HS384"), {"HS256", "HS384"}, id="oct-48"),
        pytest.param(lambda: _unbound("HS512"), {"HS256", "HS384", "HS512"}, id="oct-64"),
    ],
)
def test_unbound_key_fits_only_matching_algorithms(
    make: Callable[[], Key], expected: frozenset[str]
) -> None:
    key = make()
    assert key.alg is None
    assert key.algorithms == expected
    verifier = key if key.kty == "oct" else key.public_key()
    assert verifier.algorithms == expected
    for alg in sorted(expected):
        token = jws.sign(b"payload", key, alg=alg)
        assert jws.verify(token, verifier, algorithms=[alg]) == b"payload"


def test_unbound_key_needs_an_explicit_signing_algorithm() -> None:
    with pytest.raises(InvalidKeyError) as info:
        jws.sign(b"payload", _unbound("ES256"))
    check(info.value, InvalidKeyError, "invalid_key")


@pytest.mark.parametrize(
    ("key", "alg"),
    [
        pytest.param(lambda: _unbound("ES256"), "ES384", id="p256-es384"),
        pytest.param(lambda: _unbound("ES256"), "ES256K", id="p256-es256k"),
        pytest.param(lambda: _unbound("ES256K"), "ES256", id="secp256k1-es256"),
        pytest.param(lambda: _unbound("EdDSA"), "Ed448", id="ed25519-ed448"),
        pytest.param(lambda: _unbound("HS256"), "HS384", id="oct32-hs384"),
        pytest.param(lambda: _unbound("RS256"), "ES256", id="rsa-es256"),
    ],
)
def test_unbound_key_refuses_unfit_algorithm(key: Callable[[], Key], alg: str) -> None:
    with pytest.raises(KeyMismatchError) as info:
        key().verifier_for(alg)
    check(info.value, KeyMismatchError, "key_mismatch")


# -- use / key_ops -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "can_verify", "can_sign"),
    [
        pytest.param({}, True, True, id="absent"),
        pytest.param({"use": "sig"}, True, True, id="use-sig"),
        pytest.param({"use": "enc"}, False, False, id="use-enc"),
        pytest.param({"key_ops": ["sign", "verify"]}, True, True, id="key-ops-sign-verify"),
        pytest.param({"key_ops": ["verify"]}, True, False, id="key-ops-verify"),
        pytest.param({"key_ops": ["sign"]}, False, True, id="key-ops-sign"),
        pytest.param({"key_ops": ["encrypt", "decrypt"]}, False, False, id="key-ops-encrypt"),
        pytest.param({"use": "sig", "key_ops": ["sign"]}, False, True, id="use-sig-key-ops-sign"),
    ],
)
def test_use_and_key_ops_enforced(extra: dict[str, Any], can_verify: bool, can_sign: bool) -> None:
    key = Key.from_jwk({**EC_PRIVATE_JWK, "alg": "ES256", **extra})
    assert key.algorithms == ({"ES256"} if can_verify else set())
    token = es256_token(EC_PRIVATE)
    if can_verify:
        assert jws.verify(token, key, algorithms=["ES256"]) == b"payload"
        assert jws.verify(token, key.public_key(), algorithms=["ES256"]) == b"payload"
    else:
        with pytest.raises(KeyMismatchError) as verify_info:
            jws.verify(token, key, algorithms=["ES256"])
        check(verify_info.value, KeyMismatchError, "key_mismatch")
    if can_sign:
        signed = jws.sign(b"other", key)
        assert jws.verify(signed, Key.from_jwk(EC_JWK, alg="ES256"), algorithms=["ES256"])
    else:
        with pytest.raises(InvalidKeyError) as sign_info:
            jws.sign(b"other", key)
        check(sign_info.value, InvalidKeyError, "invalid_key")


def test_use_and_key_ops_survive_export_and_public_key() -> None:
    key = Key.from_jwk({**EC_PRIVATE_JWK, "use": "sig", "key_ops": ["sign", "verify"]})
    public = key.public_key().to_jwk()
    assert (public["use"], public["key_ops"]) == ("sig", ["sign", "verify"])
    restricted = Key.from_jwk({**EC_JWK, "use": "enc"}).public_key()
    assert restricted.algorithms == frozenset()


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param({"key_ops": "verify"}, id="key-ops-string"),
        pytest.param({"key_ops": ["verify", "verify"]}, id="key-ops-duplicate"),
        pytest.param({"key_ops": [1]}, id="key-ops-number"),
        pytest.param({"key_ops": None, "use": 1}, id="use-number"),
        pytest.param({"use": ["sig"]}, id="use-array"),
        pytest.param({"kid": 7}, id="kid-number"),
    ],
)
def test_malformed_use_key_ops_kid_refused(extra: dict[str, Any]) -> None:
    with pytest.raises(InvalidKeyError) as info:
        Key.from_jwk({**EC_JWK, **extra})
    check(info.value, InvalidKeyError, "invalid_key")


# -- JWK round trips ---------------------------------------------------------------


@pytest.mark.parametrize("alg", sorted(KEYS))
def test_private_jwk_round_trip(alg: str) -> None:
    key = KEYS[alg]
    jwk = key.to_jwk(private=True)
    reloaded = Key.from_jwk(jwk)
    assert reloaded.to_jwk(private=True) == jwk
    assert (reloaded.alg, reloaded.kid, reloaded.kty, reloaded.crv) == (
        key.alg,
        key.kid,
        key.kty,
        key.crv,
    )
    assert reloaded.is_private
    assert reloaded.thumbprint() == key.thumbprint()
    verifier = key if key.kty == "oct" else key.public_key()
    assert jws.verify(jws.sign(b"round trip", reloaded), verifier, algorithms=[alg]) == (
        b"round trip"
    )


_PUBLIC_MEMBERS = {
    "RSA": {"kty", "n", "e", "alg", "kid"},
    "EC": {"kty", "crv", "x", "y", "alg", "kid"},
    "OKP": {"kty", "crv", "x", "alg", "kid"},
}


@pytest.mark.parametrize("alg", ASYMMETRIC)
def test_public_jwk_round_trip(alg: str) -> None:
    key = KEYS[alg]
    jwk = key.to_jwk()
    assert set(jwk) == _PUBLIC_MEMBERS[key.kty]
    assert key.public_key().to_jwk() == jwk
    assert key.public_key().to_jwk(private=True) == jwk
    public = Key.from_jwk(jwk)
    assert not public.is_private
    assert public.to_jwk() == jwk
    assert public.thumbprint() == key.thumbprint()
    assert jws.verify(jws.sign(b"x", key), public, algorithms=[alg]) == b"x"
    with pytest.raises(InvalidKeyError) as info:
        jws.sign(b"x", public)
    check(info.value, InvalidKeyError, "invalid_key")


@pytest.mark.parametrize("alg", ["HS256", "HS512"])
def test_hmac_key_has_no_public_form(alg: str) -> None:
    key = KEYS[alg]
    with pytest.raises(InvalidKeyError):
        key.to_jwk()
    with pytest.raises(InvalidKeyError):
        key.public_key()
    with pytest.raises(InvalidKeyError):
        key.to_pem()
    assert set(key.to_jwk(private=True)) == {"kty", "k", "alg", "kid"}


def test_private_jwk_verifies_with_its_public_half() -> None:
    # SECURITY_PROFILE R41: a private JWK loaded for verification acts as its public key.
    key = Key.from_jwk({**EC_PRIVATE_JWK, "alg": "ES256"})
    assert jws.verify(es256_token(EC_PRIVATE), key, algorithms=["ES256"]) == b"payload"


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda jwk: jwk.pop("qi"), id="rsa-missing-qi"),
        pytest.param(lambda jwk: jwk.update(p=jwk["q"]), id="rsa-inconsistent-p"),
        pytest.param(lambda jwk: jwk.update(d=uint(12345)), id="rsa-wrong-d"),
        pytest.param(lambda jwk: jwk.update(oth=[]), id="rsa-multi-prime"),
    ],
)
def test_inconsistent_rsa_private_jwk_refused(mutate: Callable[[dict[str, Any]], object]) -> None:
    jwk = KEYS["RS256"].to_jwk(private=True)
    mutate(jwk)
    with pytest.raises(InvalidKeyError) as info:
        Key.from_jwk(jwk)
    check(info.value, InvalidKeyError, "invalid_key")


@pytest.mark.parametrize(
    ("alg", "member"),
    [("ES256", "d"), ("ES512", "d"), ("EdDSA", "d"), ("Ed448", "d"), ("ES256", "x")],
)
def test_mismatched_private_member_refused(alg: str, member: str) -> None:
    jwk = KEYS[alg].to_jwk(private=True)
    other = Key.generate(alg).to_jwk(private=True)
    jwk[member] = other[member]
    with pytest.raises(InvalidKeyError) as info:
        Key.from_jwk(jwk)
    check(info.value, InvalidKeyError, "invalid_key")


# -- RFC 7638 thumbprints -----------------------------------------------------------

RFC7638_JWK = {
    "kty": "RSA",
    "n": (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_B"
        "JECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_F"
        "DW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4"
        "vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
    ),
    "e": "AQAB",
    "alg": "RS256",
    "kid": "2011-04-29",
}


def test_thumbprint_rfc7638_section_3_1_example() -> None:
    assert Key.from_jwk(RFC7638_JWK).thumbprint() == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_thumbprint_ignores_optional_members() -> None:
    bare = {name: RFC7638_JWK[name] for name in ("kty", "n", "e")}
    tagged = {**bare, "use": "sig", "key_ops": ["verify"], "kid": "other", "alg": "PS256"}
    assert Key.from_jwk(bare).thumbprint() == Key.from_jwk(tagged).thumbprint()


@pytest.mark.parametrize("alg", sorted(KEYS))
def test_thumbprint_matches_independent_computation(alg: str) -> None:
    # RFC 7638 sec. 3.2: required members only, sorted, no whitespace, SHA-256.
    key = KEYS[alg]
    jwk = key.to_jwk(private=True)
    required = {"oct": ("k", "kty"), "RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y")}
    names = required.get(key.kty, ("crv", "kty", "x"))
    text = json.dumps({name: jwk[name] for name in names}, separators=(",", ":"), sort_keys=True)
    assert key.thumbprint() == b64u(hashlib.sha256(text.encode()).digest())


def test_generated_kid_defaults_to_thumbprint() -> None:
    key = Key.generate("ES256")
    assert key.kid == key.thumbprint()


# -- repr hides secrets --------------------------------------------------------------


@pytest.mark.parametrize("alg", ["HS256", "HS512", "RS256", "ES256", "ES512", "EdDSA", "Ed448"])
def test_repr_hides_secrets(alg: str) -> None:
    key = KEYS[alg]
    jwk = key.to_jwk(private=True)
    secrets = [jwk[name] for name in PRIVATE_MEMBERS if name in jwk]
    assert secrets
    text = f"{key!r} {key!s} {KeySet([key])!r}"
    for secret in secrets:
        raw = unb64u(secret)
        for form in (secret, base64.b64encode(raw).decode(), raw.hex(), str(raw)[2:-1]):
            assert form not in text
        assert str(int.from_bytes(raw, "big")) not in text
    assert f"alg={alg!r}" in repr(key)
    assert "private=True" in repr(key)


def test_key_errors_do_not_echo_secret_material() -> None:
    short = b64u(b"s3cr3t-but-too-short")
    with pytest.raises(InvalidKeyError) as info:
        Key.from_jwk({"kty": "oct", "k": short, "alg": "HS256"})
    assert short not in f"{info.value} {info.value!r}"


# -- PEM -----------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ASYMMETRIC)
def test_private_pem_round_trip(alg: str) -> None:
    key = KEYS[alg]
    reloaded = Key.from_pem(key.to_pem(private=True), alg=alg, kid=key.kid)
    assert reloaded.is_private
    assert reloaded.thumbprint() == key.thumbprint()
    assert jws.verify(jws.sign(b"pem", reloaded), key.public_key(), algorithms=[alg]) == b"pem"


@pytest.mark.parametrize("alg", ASYMMETRIC)
def test_public_pem_round_trip(alg: str) -> None:
    key = KEYS[alg]
    pem = key.to_pem()
    assert pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    public = Key.from_pem(pem.decode(), alg=alg)
    assert not public.is_private
    assert public.thumbprint() == key.thumbprint()
    with pytest.raises(InvalidKeyError):
        public.to_pem(private=True)


def test_encrypted_private_pem() -> None:
    key = KEYS["ES256"]
    pem = key.to_pem(private=True, password=b"correct horse")
    assert b"ENCRYPTED" in pem
    assert Key.from_pem(pem, password=b"correct horse").thumbprint() == key.thumbprint()
    for password in (b"wrong horse", None):
        with pytest.raises(InvalidKeyError) as info:
            Key.from_pem(pem, password=password)
        check(info.value, InvalidKeyError, "invalid_key")


def test_certificate_pem_loads_its_public_key() -> None:
    private = EC_PRIVATE
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "auth.example")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(7)
        .not_valid_before(datetime(2020, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2040, 1, 1, tzinfo=UTC))
        .sign(private, hashes.SHA256())
    )
    key = Key.from_pem(certificate.public_bytes(serialization.Encoding.PEM), alg="ES256")
    assert not key.is_private
    assert key.thumbprint() == Key.from_jwk(EC_JWK).thumbprint()
    assert jws.verify(es256_token(private), key, algorithms=["ES256"]) == b"payload"


def test_pkcs1_rsa_pem_loads() -> None:
    pem = RSA_PRIVATE.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.PKCS1
    )
    assert Key.from_pem(pem).thumbprint() == Key.from_jwk(RSA_JWK).thumbprint()


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"not a pem", id="text"),
        pytest.param(
            b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", id="bad-body"
        ),
        pytest.param(
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", id="bad-private"
        ),
        pytest.param(
            "-----BEGIN CERTIFICATE-----\n\u00e9\n-----END CERTIFICATE-----", id="non-ascii"
        ),
        pytest.param(42, id="not-text"),
    ],
)
def test_unusable_pem_refused(data: Any) -> None:
    with pytest.raises(InvalidKeyError) as info:
        Key.from_pem(data)
    check(info.value, InvalidKeyError, "invalid_key")


def test_pem_with_alg_that_does_not_fit_refused() -> None:
    with pytest.raises(InvalidKeyError) as info:
        Key.from_pem(KEYS["ES256"].to_pem(), alg="ES384")
    check(info.value, InvalidKeyError, "invalid_key")


# -- invalid JWK material -------------------------------------------------------------

_P521 = ec.generate_private_key(ec.SECP521R1())
_P521_JWK = ec_jwk(_P521, "P-521", 66)
_P256_Y = EC_PRIVATE.public_key().public_numbers().y


@pytest.mark.parametrize(
    "jwk",
    [
        pytest.param(
            {**EC_JWK, "y": b64u(((_P256_Y + 1) % 2**256).to_bytes(32, "big"))}, id="ec-off-curve"
        ),
        pytest.param({**EC_JWK, "x": b64u(unb64u(EC_JWK["x"])[1:])}, id="ec-x-31-octets"),
        pytest.param({**EC_JWK, "x": b64u(b"\x00" + unb64u(EC_JWK["x"]))}, id="ec-x-33-octets"),
        pytest.param({**EC_JWK, "y": b64u(b"\x00" + unb64u(EC_JWK["y"]))}, id="ec-y-33-octets"),
        pytest.param({**_P521_JWK, "x": b64u(unb64u(_P521_JWK["x"])[1:])}, id="p521-x-65-octets"),
        pytest.param(
            {**_P521_JWK, "y": b64u(b"\x00" + unb64u(_P521_JWK["y"]))}, id="p521-y-67-octets"
        ),
        pytest.param({**EC_JWK, "x": EC_JWK["x"] + "="}, id="ec-x-padded"),
        pytest.param({**EC_JWK, "x": 12345}, id="ec-x-number"),
        pytest.param({k: v for k, v in EC_JWK.items() if k != "x"}, id="ec-missing-x"),
        pytest.param({k: v for k, v in EC_JWK.items() if k != "crv"}, id="ec-missing-crv"),
        pytest.param(
            {**RSA_JWK, "n": b64u(b"\x00" + unb64u(RSA_JWK["n"]))}, id="rsa-n-leading-zero"
        ),
        pytest.param({**RSA_JWK, "e": "AAEAAQ"}, id="rsa-e-leading-zero"),
        pytest.param({**RSA_JWK, "n": ""}, id="rsa-n-empty"),
        pytest.param({**RSA_JWK, "e": "AA"}, id="rsa-e-zero"),
        pytest.param({**RSA_JWK, "n": RSA_JWK["n"] + "+/"}, id="rsa-n-base64-alphabet"),
        pytest.param({"kty": "OKP", "crv": "X25519", "x": b64u(bytes(32))}, id="okp-x25519"),
        pytest.param({"kty": "OKP", "crv": "X448", "x": b64u(bytes(56))}, id="okp-x448"),
        pytest.param(
            {**KEYS["EdDSA"].to_jwk(), "x": b64u(bytes(31))}, id="okp-ed25519-x-31-octets"
        ),
        pytest.param({**KEYS["Ed448"].to_jwk(), "x": b64u(bytes(56))}, id="okp-ed448-x-56-octets"),
        pytest.param({**KEYS["EdDSA"].to_jwk(), "y": EC_JWK["y"]}, id="okp-with-ec-y"),
        pytest.param({**KEYS["EdDSA"].to_jwk(), "crv": "P-256"}, id="okp-with-ec-curve"),
        pytest.param({**RSA_JWK, "kty": "EC"}, id="rsa-members-labelled-ec"),
        pytest.param({**EC_JWK, "kty": "RSA"}, id="ec-members-labelled-rsa"),
        pytest.param({**EC_JWK, "n": RSA_JWK["n"]}, id="ec-with-rsa-n"),
        pytest.param({"kty": "oct"}, id="oct-missing-k"),
        pytest.param({"kty": "DSA", "y": "AQAB"}, id="kty-unsupported"),
        pytest.param({**RSA_JWK, "kty": "rsa"}, id="kty-lowercase"),
        pytest.param({k: v for k, v in RSA_JWK.items() if k != "kty"}, id="kty-missing"),
        pytest.param({**RSA_JWK, "kty": ["RSA"]}, id="kty-array"),
        pytest.param({**RSA_JWK, "kty": {"RSA": 1}}, id="kty-object"),
        pytest.param({**RSA_JWK, "kty": None}, id="kty-null"),
    ],
)
def test_invalid_jwk_refused(jwk: Mapping[str, Any]) -> None:
    with pytest.raises(InvalidKeyError) as info:
        Key.from_jwk(jwk)
    check(info.value, InvalidKeyError, "invalid_key")


@pytest.mark.parametrize("value", [[], "RSA", None, 3], ids=["list", "str", "null", "int"])
def test_jwk_that_is_not_an_object_refused(value: Any) -> None:
    with pytest.raises(InvalidKeyError) as info:
        Key.from_jwk(value)
    check(info.value, InvalidKeyError, "invalid_key")


# -- curve orders ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "curve", "bits"),
    [
        pytest.param("P-256", ec.SECP256R1(), 256, id="P-256"),
        pytest.param("P-384", ec.SECP384R1(), 384, id="P-384"),
        pytest.param("P-521", ec.SECP521R1(), 521, id="P-521"),
        pytest.param("secp256k1", ec.SECP256K1(), 256, id="secp256k1"),
    ],
)
def test_curve_orders_are_the_group_orders(name: str, curve: ec.EllipticCurve, bits: int) -> None:
    # The ECDSA range check (r, s in [1, n-1], CVE-2022-21449) is only as good as n.
    n = CURVE_ORDERS[name]
    assert n.bit_length() == bits
    ec.derive_private_key(n - 1, curve)
    with pytest.raises(ValueError, match="Invalid EC key"):
        ec.derive_private_key(n, curve)


def test_curve_orders_cover_every_ecdsa_curve() -> None:
    assert set(CURVE_ORDERS) == {"P-256", "P-384", "P-521", "secp256k1"}


# -- KeySet ----------------------------------------------------------------------------

SET_A = Key.generate("ES256", kid="a")
SET_B = Key.generate("ES256", kid="b")


@pytest.mark.parametrize(
    "keys",
    [
        pytest.param(lambda: [SET_A, Key.generate("ES384", kid="a")], id="duplicate-kid"),
        pytest.param(lambda: [SET_A, KEYS["HS256"]], id="mixed-symmetric-asymmetric"),
        pytest.param(lambda: [KEYS["HS256"], KEYS["RS256"].public_key()], id="mixed-hmac-first"),
        pytest.param(lambda: [SET_A, Key.from_jwk(EC_JWK)], id="missing-kid"),
        pytest.param(lambda: [SET_A, SET_B.to_jwk()], id="jwk-dict-not-key"),
    ],
)
def test_keyset_refuses_bad_members(keys: Callable[[], list[Any]]) -> None:
    with pytest.raises(InvalidKeyError) as info:
        KeySet(keys())
    check(info.value, InvalidKeyError, "invalid_key")


@pytest.mark.parametrize(
    "jwks",
    [
        pytest.param({"keys": [SET_A.to_jwk(), {**SET_B.to_jwk(), "kid": "a"}]}, id="dup-kid"),
        pytest.param(
            {"keys": [SET_A.to_jwk(), KEYS["HS256"].to_jwk(private=True)]}, id="mixed-kinds"
        ),
        pytest.param({"keys": [EC_JWK]}, id="missing-kid"),
        pytest.param({"keys": {"a": SET_A.to_jwk()}}, id="keys-object"),
        pytest.param({"keys": None}, id="keys-null"),
        pytest.param({}, id="keys-missing"),
        pytest.param([SET_A.to_jwk()], id="bare-array"),
        pytest.param({"keys": [SET_A.to_jwk(), "b"]}, id="key-not-object"),
    ],
)
def test_jwks_refuses_bad_documents(jwks: Any) -> None:
    with pytest.raises(InvalidKeyError) as info:
        KeySet.from_jwks(jwks)
    check(info.value, InvalidKeyError, "invalid_key")


def test_keyset_lookup_miss_raises_key_not_found() -> None:
    keys = KeySet([SET_A, SET_B])
    with pytest.raises(KeyNotFoundError) as item_info:
        keys["c"]
    check(item_info.value, KeyNotFoundError, "key_not_found")
    for header in ({"kid": "c"}, {}, {"kid": None}, {"kid": "A"}):
        with pytest.raises(KeyNotFoundError) as info:
            keys.key_for(header)
        check(info.value, KeyNotFoundError, "key_not_found")


def test_keyset_verification_selects_by_kid_without_fallback() -> None:
    keys = KeySet([SET_A.public_key(), SET_B.public_key()])
    assert jws.verify(jws.sign(b"b", SET_B), keys, algorithms=["ES256"]) == b"b"
    unknown = jws.sign(b"x", Key.generate("ES256", kid="c"))
    with pytest.raises(KeyNotFoundError):
        jws.verify(unknown, keys, algorithms=["ES256"])
    no_kid = jws.sign(b"x", Key.from_jwk(SET_A.to_jwk(private=True) | {"kid": None}))
    with pytest.raises(KeyNotFoundError):
        jws.verify(no_kid, keys, algorithms=["ES256"])
    # Signed by A but naming B: B is tried, and only B.
    forged = jws.sign(b"x", SET_A, headers={"kid": "b"})
    with pytest.raises(BadSignatureError):
        jws.verify(forged, keys, algorithms=["ES256"])


def test_keyset_container_behaviour_and_export() -> None:
    keys = KeySet([SET_A, SET_B])
    assert len(keys) == 2
    assert "a" in keys
    assert "c" not in keys
    assert [key.kid for key in keys] == ["a", "b"]
    assert keys["b"] is SET_B
    assert repr(keys) == "KeySet(kids=['a', 'b'])"
    public = keys.to_jwks()
    assert all(not PRIVATE_MEMBERS & set(jwk) for jwk in public["keys"])
    assert all("d" in jwk for jwk in keys.to_jwks(private=True)["keys"])
    reloaded = KeySet.from_jwks(public)
    assert all(not key.is_private for key in reloaded)
    assert [key.thumbprint() for key in reloaded] == [SET_A.thumbprint(), SET_B.thumbprint()]
    assert all(not key.is_private for key in keys.public())
    assert KeySet.from_jwks(json.loads(json.dumps(public))).to_jwks() == public


def test_empty_keyset_finds_nothing() -> None:
    with pytest.raises(KeyNotFoundError):
        jws.verify(jws.sign(b"x", SET_A), KeySet([]), algorithms=["ES256"])


def test_custom_key_resolver_is_consulted() -> None:
    seen: list[Mapping[str, Any]] = []

    class Resolver:
        def key_for(self, header: Mapping[str, Any]) -> Key:
            seen.append(header)
            return SET_B.public_key()

    resolver = Resolver()
    assert isinstance(resolver, KeyResolver)
    assert isinstance(KeySet([]), KeyResolver)
    token = jws.sign(b"resolved", SET_B, headers={"typ": "x"})
    assert jws.verify(token, resolver, algorithms=["ES256"]) == b"resolved"
    assert seen == [{"alg": "ES256", "kid": "b", "typ": "x"}]
