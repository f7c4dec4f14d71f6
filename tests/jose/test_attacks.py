"""One test per known attack or advisory (SECURITY_PROFILE Part B, rows 1-35).

Every malicious token here is built by hand: headers and payloads are written as JSON
(or raw octets), encoded with base64url, and signed directly with ``hmac`` or
``cryptography`` whenever the attack needs a token whose signature is valid. The codec
is only used as the verifier under test (and, where noted, as a legitimate producer).
Each test asserts the exact error class and its stable ``code``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import unicodedata
import zlib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import (
    dsa,
    ec,
    ed448,
    ed25519,
    padding,
    rsa,
    x448,
    x25519,
)
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
)
from cryptography.x509.oid import NameOID

from tokenward.errors import (
    AlgorithmNotAllowedError,
    BadSignatureError,
    ClaimError,
    ConfigurationError,
    ExpiredTokenError,
    ImmatureTokenError,
    InvalidKeyError,
    InvalidTokenError,
    InvalidTypeError,
    KeyMismatchError,
    KeyNotFoundError,
    MalformedTokenError,
    MissingClaimError,
    TokenwardError,
    UnsupportedHeaderError,
)
from tokenward.jose import ALGORITHMS, HARD_MAX_SIZE, Key, KeySet, jws, jwt

NOW = 1_700_000_000
ALL_ALGS = sorted(ALGORITHMS)
PEM = serialization.Encoding.PEM
SPKI = serialization.PublicFormat.SubjectPublicKeyInfo

Signer = Callable[[bytes], bytes]
Part = Mapping[str, Any] | bytes

# -- helpers --------------------------------------------------------------------------


def b64u(data: bytes) -> str:
    """Canonical unpadded base64url, written independently of the codec."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def octets(part: Part) -> bytes:
    """A header or payload given as a mapping (compact JSON) or as raw octets."""
    if isinstance(part, bytes):
        return part
    return json.dumps(part, separators=(",", ":")).encode()


def sign_segments(h64: str, p64: str, sign: Signer) -> str:
    """Sign the exact text ``h64.p64`` (which need not be canonical) and append the MAC."""
    return f"{h64}.{p64}.{b64u(sign(f'{h64}.{p64}'.encode('ascii')))}"


def make_token(header: Part, payload: Part, sign: Signer) -> str:
    return sign_segments(b64u(octets(header)), b64u(octets(payload)), sign)


def hs(secret: bytes, hash_name: str = "sha256") -> Signer:
    return lambda data: hmac.digest(secret, data, hash_name)


def rs(private: rsa.RSAPrivateKey, hash_alg: hashes.HashAlgorithm) -> Signer:
    return lambda data: private.sign(data, padding.PKCS1v15(), hash_alg)


def ps(private: rsa.RSAPrivateKey, hash_alg: hashes.HashAlgorithm, salt: int) -> Signer:
    pss = padding.PSS(mgf=padding.MGF1(hash_alg), salt_length=salt)
    return lambda data: private.sign(data, pss, hash_alg)


def es(private: ec.EllipticCurvePrivateKey, hash_alg: hashes.HashAlgorithm, half: int) -> Signer:
    def sign(data: bytes) -> bytes:
        r, s = decode_dss_signature(private.sign(data, ec.ECDSA(hash_alg)))
        return r.to_bytes(half, "big") + s.to_bytes(half, "big")

    return sign


def ed(private: ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey) -> Signer:
    return private.sign


def spki_pem(
    private: rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey,
) -> bytes:
    return private.public_key().public_bytes(PEM, SPKI)


def ec_public_jwk(public: ec.EllipticCurvePublicKey, crv: str, size: int) -> dict[str, str]:
    numbers = public.public_numbers()
    return {
        "kty": "EC",
        "crv": crv,
        "x": b64u(numbers.x.to_bytes(size, "big")),
        "y": b64u(numbers.y.to_bytes(size, "big")),
    }


def check(error: TokenwardError, cls: type[TokenwardError], code: str) -> None:
    """The error is exactly ``cls`` (not a sibling or a parent) with the stable ``code``."""
    assert type(error) is cls
    assert error.code == code


# -- keys (generated once per module) ------------------------------------------------

HS_SECRET = hashlib.sha256(b"tokenward attack tests: HS256 secret").digest()
HS_KEY = Key.from_secret(HS_SECRET, alg="HS256", kid="hs-1")

RSA_PRIVATE = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_PEM = spki_pem(RSA_PRIVATE)
RSA_KEY = Key.from_pem(RSA_PEM, alg="RS256", kid="rsa-1")
RSA_PS_KEY = Key.from_pem(RSA_PEM, alg="PS256", kid="rsa-ps")
RSA_K = 256  # modulus length in octets

EC_CURVES: dict[str, tuple[ec.EllipticCurve, str, hashes.HashAlgorithm, int, int]] = {
    # alg: (curve, JWK crv, hash, coordinate/half-signature size, group order)
    "ES256": (
        ec.SECP256R1(),
        "P-256",
        hashes.SHA256(),
        32,
        0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    ),
    "ES384": (
        ec.SECP384R1(),
        "P-384",
        hashes.SHA384(),
        48,
        int(
            "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF"
            "581A0DB248B0A77AECEC196ACCC52973",
            16,
        ),
    ),
    "ES512": (
        ec.SECP521R1(),
        "P-521",
        hashes.SHA512(),
        66,
        int(
            "01FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF"
            "FA51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409",
            16,
        ),
    ),
    "ES256K": (
        ec.SECP256K1(),
        "secp256k1",
        hashes.SHA256(),
        32,
        0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141,
    ),
}
EC_PRIVATE = {alg: ec.generate_private_key(spec[0]) for alg, spec in EC_CURVES.items()}
EC_KEYS = {
    alg: Key.from_pem(spki_pem(private), alg=alg, kid=f"ec-{alg}")
    for alg, private in EC_PRIVATE.items()
}
EC_KEY = EC_KEYS["ES256"]
ATTACKER_EC = ec.generate_private_key(ec.SECP256R1())

ED25519_PRIVATE = ed25519.Ed25519PrivateKey.generate()
ED448_PRIVATE = ed448.Ed448PrivateKey.generate()
ED25519_KEY = Key.from_pem(spki_pem(ED25519_PRIVATE), alg="EdDSA", kid="ed-1")
ED448_KEY = Key.from_pem(spki_pem(ED448_PRIVATE), alg="EdDSA", kid="ed448-1")

CLAIMS: dict[str, Any] = {"sub": "alice", "exp": NOW + 3600}


def es256(private: ec.EllipticCurvePrivateKey = EC_PRIVATE["ES256"]) -> Signer:
    return es(private, hashes.SHA256(), 32)


def decode_hs(token: str | bytes, **options: Any) -> dict[str, Any]:
    return jwt.decode(token, HS_KEY, algorithms=["HS256"], now=NOW, **options)


# -- 1. alg: none ---------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
@pytest.mark.parametrize(
    "signature",
    [
        pytest.param("", id="signature-dropped"),
        pytest.param(b64u(b"\x00" * 32), id="junk-signature"),
        pytest.param(None, id="hs256-mac-of-real-key"),
    ],
)
def test_alg_none_cve_2015_9235(alg: str, signature: str | None) -> None:
    h64, p64 = b64u(octets({"alg": alg, "typ": "JWT"})), b64u(octets(CLAIMS))
    if signature is None:
        token = sign_segments(h64, p64, hs(HS_SECRET))
    else:
        token = f"{h64}.{p64}.{signature}"
    # Even with every supported algorithm allowed, "none" (in any case) is never one.
    with pytest.raises(AlgorithmNotAllowedError) as jws_info:
        jws.verify(token, HS_KEY, algorithms=ALL_ALGS)
    check(jws_info.value, AlgorithmNotAllowedError, "algorithm_not_allowed")
    with pytest.raises(AlgorithmNotAllowedError) as jwt_info:
        jwt.decode(token, HS_KEY, algorithms=ALL_ALGS, now=NOW)
    check(jwt_info.value, AlgorithmNotAllowedError, "algorithm_not_allowed")


@pytest.mark.parametrize(
    "header",
    [
        pytest.param({"typ": "JWT"}, id="alg-missing"),
        pytest.param({"alg": None}, id="alg-null"),
        pytest.param({"alg": ""}, id="alg-empty"),
        pytest.param({"alg": False}, id="alg-false"),
        pytest.param({"alg": ["HS256"]}, id="alg-array"),
        pytest.param({"alg": "hs256"}, id="alg-lowercase"),
        pytest.param({"alg": "HS256 "}, id="alg-trailing-space"),
    ],
)
def test_alg_none_falsy_alg_cve_2022_23540(header: dict[str, Any]) -> None:
    # jsonwebtoken <= 8.5.1 fell back to "none" for falsy values; any alg that is not
    # exactly a supported, allowed name is refused, whatever the MAC.
    token = make_token(header, CLAIMS, hs(HS_SECRET))
    with pytest.raises(AlgorithmNotAllowedError) as info:
        jws.verify(token, HS_KEY, algorithms=["HS256"])
    check(info.value, AlgorithmNotAllowedError, "algorithm_not_allowed")


@pytest.mark.parametrize(
    "algorithms",
    [
        pytest.param([], id="empty-list"),
        pytest.param(["none"], id="none"),
        pytest.param(["HS256", "none"], id="hs256-and-none"),
        pytest.param(["NONE"], id="upper-none"),
        pytest.param("HS256", id="bare-string"),
    ],
)
def test_alg_none_allowlist_cve_2022_23540(algorithms: Any) -> None:
    token = make_token({"alg": "none"}, CLAIMS, lambda _: b"")
    with pytest.raises(ConfigurationError) as info:
        jws.verify(token, HS_KEY, algorithms=algorithms)
    check(info.value, ConfigurationError, "configuration_error")


# -- 2. HS/RS key confusion -----------------------------------------------------------

CONFUSION_KEYS = [
    pytest.param(RSA_PEM, None, id="rsa-spki-pem-unbound"),
    pytest.param(RSA_PEM, "RS256", id="rsa-spki-pem-rs256"),
    pytest.param(spki_pem(EC_PRIVATE["ES256"]), "ES256", id="ec-p256-spki-pem"),
    pytest.param(spki_pem(ED25519_PRIVATE), "EdDSA", id="ed25519-spki-pem"),
]


@pytest.mark.parametrize(("pem", "alg"), CONFUSION_KEYS)
def test_hs_rs_key_confusion_cve_2016_10555(pem: bytes, alg: str | None) -> None:
    # The attacker MACs an HS256 token with the verifier's public key PEM as the secret.
    public = Key.from_pem(pem, alg=alg)
    token = make_token({"alg": "HS256"}, CLAIMS, hs(pem))
    with pytest.raises(KeyMismatchError) as info:
        jwt.decode(token, public, algorithms=ALL_ALGS, now=NOW)
    check(info.value, KeyMismatchError, "key_mismatch")


@pytest.mark.parametrize(("pem", "alg"), CONFUSION_KEYS)
@pytest.mark.parametrize(
    "attempt",
    [
        pytest.param(lambda pem: Key.from_secret(pem.decode(), alg="HS256"), id="from-secret-str"),
        pytest.param(lambda pem: Key.from_pem(pem, alg="HS256"), id="from-pem-bound-hs256"),
        pytest.param(
            lambda pem: Key.from_jwk(Key.from_pem(pem).to_jwk(), alg="HS256"),
            id="from-jwk-bound-hs256",
        ),
    ],
)
def test_hs_rs_key_confusion_cve_2016_10555_no_hmac_key_from_public_key(
    pem: bytes, alg: str | None, attempt: Callable[[bytes], Key]
) -> None:
    del alg
    with pytest.raises(InvalidKeyError) as info:
        attempt(pem)
    check(info.value, InvalidKeyError, "invalid_key")


@pytest.mark.parametrize(("pem", "alg"), CONFUSION_KEYS)
@pytest.mark.parametrize("as_text", [True, False], ids=["pem-str", "pem-bytes"])
def test_hs_rs_key_confusion_cve_2016_10555_pem_is_not_a_key(
    pem: bytes, alg: str | None, as_text: bool
) -> None:
    # A generic verify(token, pem) is where the original bug lived: keys are typed objects.
    del alg
    token = make_token({"alg": "HS256"}, CLAIMS, hs(pem))
    key: Any = pem.decode() if as_text else pem
    with pytest.raises(ConfigurationError) as info:
        jws.verify(token, key, algorithms=["HS256"])
    check(info.value, ConfigurationError, "configuration_error")


# -- 3. blocklist bypasses of the confusion fix ----------------------------------------

_RSA_PKCS1 = RSA_PRIVATE.public_key().public_bytes(PEM, serialization.PublicFormat.PKCS1)
_OPENSSH = serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH


@pytest.mark.parametrize(
    ("material", "key"),
    [
        pytest.param(
            _RSA_PKCS1, Key.from_pem(_RSA_PKCS1, alg="RS256", kid="rsa-1"), id="pkcs1-pem"
        ),
        pytest.param(_RSA_PKCS1.replace(b"\n", b"\r\n"), RSA_KEY, id="pkcs1-pem-crlf-regex-miss"),
        pytest.param(
            ED25519_PRIVATE.public_key().public_bytes(*_OPENSSH), ED25519_KEY, id="openssh-ed25519"
        ),
        pytest.param(
            EC_PRIVATE["ES256"].public_key().public_bytes(*_OPENSSH), EC_KEY, id="openssh-ecdsa"
        ),
        pytest.param(RSA_PRIVATE.public_key().public_bytes(*_OPENSSH), RSA_KEY, id="openssh-rsa"),
        pytest.param(b" \n\t" + RSA_PEM, RSA_KEY, id="leading-whitespace-pem"),
        pytest.param(b"x" + RSA_PEM, RSA_KEY, id="arbitrary-prefix-pem"),
        pytest.param(RSA_PEM + b"\n\n", RSA_KEY, id="trailing-newlines-pem"),
    ],
)
@pytest.mark.parametrize("via_keyset", [False, True], ids=["key", "keyset"])
def test_key_confusion_blocklist_bypass_cve_2017_11424_cve_2022_29217(
    material: bytes, key: Key, via_keyset: bool
) -> None:
    # No "does this look like a public key?" heuristic exists to be bypassed: text is
    # never an HMAC secret, and an asymmetric key never verifies HS*, even when the
    # allow-list mixes HS256 with the key's own algorithm (CVE-2022-23541).
    with pytest.raises(InvalidKeyError) as key_info:
        Key.from_secret(material.decode(), alg="HS256")  # type: ignore[arg-type]
    check(key_info.value, InvalidKeyError, "invalid_key")

    assert key.alg is not None
    token = make_token({"alg": "HS256", "kid": key.kid}, CLAIMS, hs(material))
    verifier: Key | KeySet = KeySet([key]) if via_keyset else key
    with pytest.raises(KeyMismatchError) as info:
        jwt.decode(token, verifier, algorithms=["HS256", key.alg], now=NOW)
    check(info.value, KeyMismatchError, "key_mismatch")


# -- 4. HMAC keyed with the raw EC public key (Wycheproof) -----------------------------

_EC_PUBLIC = EC_PRIVATE["ES256"].public_key()
_EC_JWK = ec_public_jwk(_EC_PUBLIC, "P-256", 32)


@pytest.mark.parametrize(
    "material",
    [
        pytest.param(
            _EC_PUBLIC.public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            ),
            id="x962-uncompressed-point",
        ),
        pytest.param(
            _EC_PUBLIC.public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
            ),
            id="x962-compressed-point",
        ),
        pytest.param(
            base64.urlsafe_b64decode(_EC_JWK["x"] + "=")
            + base64.urlsafe_b64decode(_EC_JWK["y"] + "="),
            id="raw-x-y",
        ),
        pytest.param(base64.urlsafe_b64decode(_EC_JWK["x"] + "="), id="raw-x"),
        pytest.param(_EC_PUBLIC.public_bytes(serialization.Encoding.DER, SPKI), id="spki-der"),
        pytest.param(octets(_EC_JWK), id="jwk-json"),
    ],
)
def test_symmetric_key_from_ec_verification_key_wycheproof(material: bytes) -> None:
    token = make_token({"alg": "HS256", "kid": EC_KEY.kid}, CLAIMS, hs(material))
    with pytest.raises(KeyMismatchError) as info:
        jwt.decode(token, EC_KEY, algorithms=["ES256", "HS256"], now=NOW)
    check(info.value, KeyMismatchError, "key_mismatch")


@pytest.mark.parametrize(
    "jwk",
    [
        pytest.param({**_EC_JWK, "kty": "oct", "k": _EC_JWK["x"]}, id="oct-with-ec-members"),
        pytest.param({**_EC_JWK, "k": b64u(HS_SECRET)}, id="ec-with-oct-member"),
    ],
)
def test_symmetric_key_from_ec_verification_key_wycheproof_mixed_jwk(
    jwk: dict[str, Any],
) -> None:
    with pytest.raises(InvalidKeyError) as info:
        Key.from_jwk(jwk)
    check(info.value, InvalidKeyError, "invalid_key")


# -- 5. psychic signatures --------------------------------------------------------------


@pytest.mark.parametrize("alg", sorted(EC_CURVES))
@pytest.mark.parametrize(
    "form",
    ["r-s-zero", "r-zero", "s-zero", "r-s-order", "r-order", "s-order", "r-s-order-plus-one"],
)
def test_psychic_signature_cve_2022_21449(alg: str, form: str) -> None:
    _, _, hash_alg, half, order = EC_CURVES[alg]
    header = b64u(octets({"alg": alg, "kid": EC_KEYS[alg].kid}))
    payload = b64u(octets(CLAIMS))
    valid = b64u(es(EC_PRIVATE[alg], hash_alg, half)(f"{header}.{payload}".encode()))
    real = base64.urlsafe_b64decode(valid + "=" * (-len(valid) % 4))
    r, s = int.from_bytes(real[:half], "big"), int.from_bytes(real[half:], "big")
    r, s = {
        "r-s-zero": (0, 0),
        "r-zero": (0, s),
        "s-zero": (r, 0),
        "r-s-order": (order, order),
        "r-order": (order, s),
        "s-order": (r, order),
        "r-s-order-plus-one": (order + 1, order + 1),
    }[form]
    forged = b64u(r.to_bytes(half, "big") + s.to_bytes(half, "big"))
    with pytest.raises(BadSignatureError) as info:
        jws.verify(f"{header}.{payload}.{forged}", EC_KEYS[alg], algorithms=[alg])
    check(info.value, BadSignatureError, "bad_signature")


# -- 6. ECDSA signature encoding malleability ----------------------------------------


def _ec_signature_forms(alg: str, form: str) -> tuple[str, str]:
    _, _, hash_alg, half, _ = EC_CURVES[alg]
    signing_input = f"{b64u(octets({'alg': alg}))}.{b64u(octets(CLAIMS))}"
    der = EC_PRIVATE[alg].sign(signing_input.encode(), ec.ECDSA(hash_alg))
    r, s = decode_dss_signature(der)
    raw = r.to_bytes(half, "big") + s.to_bytes(half, "big")
    forms = {
        "der": der,
        "zero-prepended": b"\x00" + raw,
        "zero-appended": raw + b"\x00",
        "truncated": raw[:-1],
        "halves-zero-padded": b"\x00" + raw[:half] + b"\x00" + raw[half:],
        "halves-swapped": raw[half:] + raw[:half],
    }
    return signing_input, b64u(forms[form])


@pytest.mark.parametrize("alg", ["ES256", "ES512"])
@pytest.mark.parametrize(
    "form",
    ["der", "zero-prepended", "zero-appended", "truncated", "halves-zero-padded", "halves-swapped"],
)
def test_ecdsa_signature_encoding_malleability(alg: str, form: str) -> None:
    signing_input, signature = _ec_signature_forms(alg, form)
    with pytest.raises(BadSignatureError) as info:
        jws.verify(f"{signing_input}.{signature}", EC_KEYS[alg], algorithms=[alg])
    check(info.value, BadSignatureError, "bad_signature")


@pytest.mark.parametrize("alg", sorted(EC_CURVES))
def test_ecdsa_high_s_signature_is_valid(alg: str) -> None:
    # R30: JWA has no low-S rule, so (r, n - s) is as valid as (r, s); a verifier that
    # "normalises" signatures would refuse tokens from conforming producers.
    _, _, hash_alg, half, order = EC_CURVES[alg]
    signing_input = f"{b64u(octets({'alg': alg}))}.{b64u(b'payload')}"
    r, s = decode_dss_signature(EC_PRIVATE[alg].sign(signing_input.encode(), ec.ECDSA(hash_alg)))
    flipped = r.to_bytes(half, "big") + (order - s).to_bytes(half, "big")
    token = f"{signing_input}.{b64u(flipped)}"
    assert jws.verify(token, EC_KEYS[alg], algorithms=[alg]) == b"payload"


# -- 7. RSA signature malleability and Bleichenbacher'06 -------------------------------

RSA3_PRIVATE = rsa.generate_private_key(public_exponent=3, key_size=2048)
RSA3_KEY = Key.from_pem(spki_pem(RSA3_PRIVATE), alg="RS256")
_SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


def _icbrt(value: int) -> int:
    """Floor of the integer cube root (Newton's method)."""
    guess = 1 << ((value.bit_length() + 2) // 3)
    while True:
        better = (2 * guess + value // (guess * guess)) // 3
        if better >= guess:
            break
        guess = better
    while guess**3 > value:
        guess -= 1
    while (guess + 1) ** 3 <= value:
        guess += 1
    return guess


def _rs256_input(payload: bytes = b"payload") -> str:
    return f"{b64u(octets({'alg': 'RS256'}))}.{b64u(payload)}"


def _rs256_sig(signing_input: str) -> bytes:
    return RSA_PRIVATE.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())


def _rsa_zero_prepended() -> tuple[str, Key]:
    si = _rs256_input()
    signature = b"\x00" + _rs256_sig(si)
    return f"{si}.{b64u(signature)}", RSA_KEY


def _rsa_truncated() -> tuple[str, Key]:
    si = _rs256_input()
    return f"{si}.{b64u(_rs256_sig(si)[:-1])}", RSA_KEY


def _rsa_leading_zero_stripped() -> tuple[str, Key]:
    # Find a message whose signature starts with a zero octet (1 in 256), then send the
    # signature without it: a lenient verifier left-pads and accepts.
    counter = 0
    while True:
        si = _rs256_input(b"payload-%d" % counter)
        signature = _rs256_sig(si)
        if signature[0] == 0:
            return f"{si}.{b64u(signature[1:])}", RSA_KEY
        counter += 1


def _rsa_s_equals_n() -> tuple[str, Key]:
    n = RSA_PRIVATE.public_key().public_numbers().n
    return f"{_rs256_input()}.{b64u(n.to_bytes(RSA_K, 'big'))}", RSA_KEY


def _rsa_s_plus_n() -> tuple[str, Key]:
    # s + n is congruent to s mod n: textbook RSA would "verify" it.
    si = _rs256_input()
    s = int.from_bytes(_rs256_sig(si), "big") + RSA_PRIVATE.public_key().public_numbers().n
    return f"{si}.{b64u(s.to_bytes((s.bit_length() + 7) // 8, 'big'))}", RSA_KEY


def _rsa_zero() -> tuple[str, Key]:
    return f"{_rs256_input()}.{b64u(bytes(RSA_K))}", RSA_KEY


def _rsa_one() -> tuple[str, Key]:
    return f"{_rs256_input()}.{b64u((1).to_bytes(RSA_K, 'big'))}", RSA_KEY


def _bleichenbacher_e3() -> tuple[str, Key]:
    # Bleichenbacher'06: with e = 3, a cube root of 00 01 FF..FF 00 DigestInfo H garbage
    # passes a verifier that parses the DigestInfo and ignores what follows it.
    si = _rs256_input()
    prefix = (
        b"\x00\x01"
        + b"\xff" * 8
        + b"\x00"
        + _SHA256_DIGEST_INFO
        + hashlib.sha256(si.encode()).digest()
    )
    s = _icbrt(int.from_bytes(prefix + b"\xff" * (RSA_K - len(prefix)), "big"))
    assert (s**3).to_bytes(RSA_K, "big").startswith(prefix)  # the forgery is well formed
    return f"{si}.{b64u(s.to_bytes(RSA_K, 'big'))}", RSA3_KEY


def _pss_token(salt: int, mgf_hash: hashes.HashAlgorithm) -> tuple[str, Key]:
    si = f"{b64u(octets({'alg': 'PS256'}))}.{b64u(b'payload')}"
    pss = padding.PSS(mgf=padding.MGF1(mgf_hash), salt_length=salt)
    signature = RSA_PRIVATE.sign(si.encode(), pss, hashes.SHA256())
    return f"{si}.{b64u(signature)}", RSA_PS_KEY


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(_rsa_zero_prepended, id="zero-prepended"),
        pytest.param(_rsa_truncated, id="truncated"),
        pytest.param(_rsa_leading_zero_stripped, id="leading-zero-stripped"),
        pytest.param(_rsa_s_equals_n, id="s-equals-n"),
        pytest.param(_rsa_s_plus_n, id="s-plus-n"),
        pytest.param(_rsa_zero, id="s-zero"),
        pytest.param(_rsa_one, id="s-one"),
        pytest.param(_bleichenbacher_e3, id="bleichenbacher-e3-forgery"),
        pytest.param(lambda: _pss_token(RSA_K - 32 - 2, hashes.SHA256()), id="pss-salt-max-length"),
        pytest.param(lambda: _pss_token(0, hashes.SHA256()), id="pss-salt-zero"),
        pytest.param(lambda: _pss_token(32, hashes.SHA1()), id="pss-mgf1-sha1"),  # noqa: S303
    ],
)
def test_rsa_signature_malleability_bleichenbacher_06(build: Callable[[], tuple[str, Key]]) -> None:
    token, key = build()
    assert key.alg is not None
    with pytest.raises(BadSignatureError) as info:
        jws.verify(token, key, algorithms=[key.alg])
    check(info.value, BadSignatureError, "bad_signature")


# -- 8. Ed25519 / Ed448 malleability (S + L) ------------------------------------------

_ED_ORDERS = {
    "Ed25519": 2**252 + 27742317777372353535851937790883648493,
    "Ed448": 2**446 - 13818066809895115352007386748515426880336692474882178609894547503885,
}


@pytest.mark.parametrize(
    ("curve", "private", "key"),
    [
        pytest.param("Ed25519", ED25519_PRIVATE, ED25519_KEY, id="ed25519"),
        pytest.param("Ed448", ED448_PRIVATE, ED448_KEY, id="ed448"),
    ],
)
def test_ed25519_malleability_s_plus_l(
    curve: str, private: ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey, key: Key
) -> None:
    signing_input = f"{b64u(octets({'alg': 'EdDSA'}))}.{b64u(b'payload')}"
    signature = private.sign(signing_input.encode())
    half = len(signature) // 2
    s = int.from_bytes(signature[half:], "little") + _ED_ORDERS[curve]
    assert s < 2 ** (8 * half)  # still fits the S field: only a range check can catch it
    forged = signature[:half] + s.to_bytes(half, "little")
    assert jws.verify(f"{signing_input}.{b64u(signature)}", key, algorithms=["EdDSA"])
    with pytest.raises(BadSignatureError) as info:
        jws.verify(f"{signing_input}.{b64u(forged)}", key, algorithms=["EdDSA"])
    check(info.value, BadSignatureError, "bad_signature")


# -- 9. null / empty signature -------------------------------------------------------


_SIGNATURE_SIZES = {"HS256": 32, "RS256": RSA_K, "PS256": RSA_K, "ES256": 64, "EdDSA": 64}


@pytest.mark.parametrize(
    ("alg", "key"),
    [
        pytest.param("HS256", HS_KEY, id="hs256"),
        pytest.param("RS256", RSA_KEY, id="rs256"),
        pytest.param("PS256", RSA_PS_KEY, id="ps256"),
        pytest.param("ES256", EC_KEY, id="es256"),
        pytest.param("EdDSA", ED25519_KEY, id="eddsa"),
    ],
)
@pytest.mark.parametrize(
    ("form", "error", "code"),
    [
        pytest.param("empty", BadSignatureError, "bad_signature", id="empty-segment"),
        pytest.param("zeros", BadSignatureError, "bad_signature", id="zero-octets"),
        pytest.param("one-zero", BadSignatureError, "bad_signature", id="one-zero-octet"),
        pytest.param("missing", MalformedTokenError, "malformed_token", id="segment-missing"),
    ],
)
def test_null_signature_cve_2020_28042(
    alg: str, key: Key, form: str, error: type[TokenwardError], code: str
) -> None:
    signing_input = f"{b64u(octets({'alg': alg, 'kid': key.kid}))}.{b64u(octets(CLAIMS))}"
    size = _SIGNATURE_SIZES[alg]
    token = {
        "empty": f"{signing_input}.",
        "zeros": f"{signing_input}.{b64u(bytes(size))}",
        "one-zero": f"{signing_input}.AA",
        "missing": signing_input,
    }[form]
    with pytest.raises(error) as info:
        jwt.decode(token, key, algorithms=[alg], now=NOW)
    check(info.value, error, code)


# -- 10. blank HMAC password ---------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: Key.from_secret(b"", alg="HS256"), id="from-secret-empty-hs256"),
        pytest.param(lambda: Key.from_secret(b"", alg="HS512"), id="from-secret-empty-hs512"),
        pytest.param(lambda: Key.from_jwk({"kty": "oct", "k": ""}), id="jwk-empty-k-unbound"),
        pytest.param(
            lambda: Key.from_jwk({"kty": "oct", "k": "", "alg": "HS256"}), id="jwk-empty-k-hs256"
        ),
        pytest.param(lambda: Key.from_secret(b"secret", alg="HS256"), id="default-secret"),
        pytest.param(lambda: Key.from_secret(b"\x00", alg="HS256"), id="one-zero-octet"),
    ],
)
def test_blank_hmac_password_cve_2019_20933(make: Callable[[], Key]) -> None:
    with pytest.raises(InvalidKeyError) as info:
        make()
    check(info.value, InvalidKeyError, "invalid_key")


@pytest.mark.parametrize("secret", [b"", b"secret"], ids=["empty", "default-secret"])
def test_blank_hmac_password_cve_2019_20933_token_refused(secret: bytes) -> None:
    token = make_token({"alg": "HS256", "kid": "hs-1"}, CLAIMS, hs(secret))
    with pytest.raises(BadSignatureError) as info:
        decode_hs(token)
    check(info.value, BadSignatureError, "bad_signature")


# -- 11. weak (crackable) HMAC secrets ----------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: Key.from_secret(bytes(31), alg="HS256"), id="hs256-31-octets"),
        pytest.param(lambda: Key.from_secret(bytes(47), alg="HS384"), id="hs384-47-octets"),
        pytest.param(lambda: Key.from_secret(bytes(63), alg="HS512"), id="hs512-63-octets"),
        pytest.param(lambda: Key.from_secret(bytes(32), alg="HS512"), id="hs512-32-octets"),
        pytest.param(
            lambda: Key.from_jwk({"kty": "oct", "k": b64u(bytes(32)), "alg": "HS384"}),
            id="jwk-hs384-32-octets",
        ),
        pytest.param(
            lambda: Key.from_secret("correct horse battery staple, a long passphrase", alg="HS256"),  # type: ignore[arg-type]
            id="password-text",
        ),
        pytest.param(
            lambda: Key.from_secret(bytearray(32), alg="HS256"),  # type: ignore[arg-type]
            id="bytearray",
        ),
    ],
)
def test_weak_hmac_secret_jwt_tool_crack(make: Callable[[], Key]) -> None:
    with pytest.raises(InvalidKeyError) as info:
        make()
    check(info.value, InvalidKeyError, "invalid_key")


@pytest.mark.parametrize(("alg", "size"), [("HS256", 32), ("HS384", 48), ("HS512", 64)])
def test_weak_hmac_secret_generated_keys_are_hash_length(alg: str, size: int) -> None:
    k = Key.generate(alg).to_jwk(private=True)["k"]
    assert len(base64.urlsafe_b64decode(k + "=" * (-len(k) % 4))) == size


# -- 12. embedded jwk header injection --------------------------------------------

_ATTACKER_JWK = ec_public_jwk(ATTACKER_EC.public_key(), "P-256", 32)


@pytest.mark.parametrize(
    ("header_kid", "error", "code"),
    [
        pytest.param("ec-ES256", BadSignatureError, "bad_signature", id="kid-of-real-key"),
        pytest.param("attacker", KeyNotFoundError, "key_not_found", id="kid-of-injected-key"),
    ],
)
@pytest.mark.parametrize("via_keyset", [False, True], ids=["key", "keyset"])
def test_embedded_jwk_header_injection_cve_2018_0114(
    header_kid: str, error: type[TokenwardError], code: str, via_keyset: bool
) -> None:
    header = {"alg": "ES256", "kid": header_kid, "jwk": {**_ATTACKER_JWK, "kid": header_kid}}
    token = make_token(header, CLAIMS, es256(ATTACKER_EC))
    verifier: Key | KeySet = KeySet([EC_KEY, EC_KEYS["ES384"]]) if via_keyset else EC_KEY
    with pytest.raises(error) as info:
        jwt.decode(token, verifier, algorithms=["ES256"], now=NOW)
    check(info.value, error, code)


def test_embedded_jwk_header_injection_cve_2018_0114_symmetric() -> None:
    attacker_secret = bytes(range(32))
    header = {"alg": "HS256", "kid": "hs-1", "jwk": {"kty": "oct", "k": b64u(attacker_secret)}}
    token = make_token(header, CLAIMS, hs(attacker_secret))
    with pytest.raises(BadSignatureError) as info:
        decode_hs(token)
    check(info.value, BadSignatureError, "bad_signature")


# -- 13. jku / x5u spoofing (SSRF) -----------------------------------------------------


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Record (and refuse) every attempt to resolve a name or open a connection."""
    attempts: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise OSError("network access attempted by the verifier")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    return attempts


@pytest.mark.parametrize(
    "url_param",
    [
        pytest.param({"jku": "https://attacker.example/.well-known/jwks.json"}, id="jku"),
        pytest.param({"x5u": "https://attacker.example/cert.pem"}, id="x5u"),
        pytest.param({"jku": "http://169.254.169.254/latest/meta-data/"}, id="jku-ssrf-metadata"),
    ],
)
@pytest.mark.parametrize(
    ("header_kid", "error", "code"),
    [
        pytest.param("ec-ES256", BadSignatureError, "bad_signature", id="kid-of-real-key"),
        pytest.param("attacker", KeyNotFoundError, "key_not_found", id="kid-at-attacker-url"),
    ],
)
def test_jku_x5u_spoofing_ssrf(
    no_network: list[object],
    url_param: dict[str, str],
    header_kid: str,
    error: type[TokenwardError],
    code: str,
) -> None:
    token = make_token({"alg": "ES256", "kid": header_kid, **url_param}, CLAIMS, es256(ATTACKER_EC))
    with pytest.raises(error) as info:
        jwt.decode(token, KeySet([EC_KEY]), algorithms=["ES256"], now=NOW)
    check(info.value, error, code)
    assert no_network == []


# -- 14. x5c self-signed certificate --------------------------------------------------


def _self_signed_certificate(private: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "auth.example")])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(1)
        .not_valid_before(datetime(2020, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2040, 1, 1, tzinfo=UTC))
        .sign(private, hashes.SHA256())
    )


@pytest.mark.parametrize(
    ("header_kid", "via_keyset", "error", "code"),
    [
        pytest.param(None, False, BadSignatureError, "bad_signature", id="key-no-kid"),
        pytest.param("ec-ES256", True, BadSignatureError, "bad_signature", id="keyset-real-kid"),
        pytest.param(None, True, KeyNotFoundError, "key_not_found", id="keyset-no-kid"),
    ],
)
def test_x5c_self_signed_certificate(
    header_kid: str | None, via_keyset: bool, error: type[TokenwardError], code: str
) -> None:
    der = _self_signed_certificate(ATTACKER_EC).public_bytes(serialization.Encoding.DER)
    header: dict[str, Any] = {
        "alg": "ES256",
        "x5c": [base64.b64encode(der).decode()],
        "x5t#S256": b64u(hashlib.sha256(der).digest()),
    }
    if header_kid is not None:
        header["kid"] = header_kid
    token = make_token(header, CLAIMS, es256(ATTACKER_EC))
    verifier: Key | KeySet = KeySet([EC_KEY]) if via_keyset else EC_KEY
    with pytest.raises(error) as info:
        jwt.decode(token, verifier, algorithms=["ES256"], now=NOW)
    check(info.value, error, code)


# -- 15. kid injection ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("kid", "secret"),
    [
        pytest.param("../../../../../../dev/null", b"", id="path-traversal-dev-null"),
        pytest.param("/dev/null", b"", id="absolute-dev-null"),
        pytest.param("hs-1/../../../../dev/null", b"", id="traversal-after-real-kid"),
        pytest.param("x' UNION SELECT 'attacker-secret';--", b"attacker-secret", id="sql-union"),
        pytest.param("hs-1' OR '1'='1", HS_SECRET, id="sql-tautology"),
        pytest.param("hs-1|/usr/bin/id", b"", id="command-pipe"),
        pytest.param("$(curl attacker.example)", b"", id="command-substitution"),
        pytest.param("hs-1\x00", HS_SECRET, id="nul-suffix"),
        pytest.param("hs-1 ", HS_SECRET, id="trailing-space"),
        pytest.param("HS-1", HS_SECRET, id="case-variant"),
        pytest.param("", b"", id="empty"),
    ],
)
@pytest.mark.parametrize("via_keyset", [False, True], ids=["key", "keyset"])
def test_kid_injection_traversal_sql_command(kid: str, secret: bytes, via_keyset: bool) -> None:
    # kid is an opaque lookup key: a miss is a failure, with no fallback to another key.
    token = make_token({"alg": "HS256", "kid": kid}, CLAIMS, hs(secret))
    other = Key.from_secret(hashlib.sha256(b"second key").digest(), alg="HS256", kid="hs-2")
    verifier: Key | KeySet = KeySet([HS_KEY, other]) if via_keyset else HS_KEY
    with pytest.raises(KeyNotFoundError) as info:
        jwt.decode(token, verifier, algorithms=["HS256"], now=NOW)
    check(info.value, KeyNotFoundError, "key_not_found")


@pytest.mark.parametrize(
    "kid",
    [
        pytest.param(1, id="number"),
        pytest.param(None, id="null"),
        pytest.param(True, id="boolean"),
        pytest.param(["hs-1"], id="array"),
        pytest.param({"$ne": ""}, id="nosql-operator"),
    ],
)
def test_kid_injection_non_string_kid(kid: object) -> None:
    token = make_token({"alg": "HS256", "kid": kid}, CLAIMS, hs(HS_SECRET))
    with pytest.raises(MalformedTokenError) as info:
        jwt.decode(token, KeySet([HS_KEY]), algorithms=["HS256"], now=NOW)
    check(info.value, MalformedTokenError, "malformed_token")


# -- 16. crit ignored ----------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        pytest.param({"alg": "HS256", "crit": ["exp"], "exp": NOW + 10}, id="crit-exp"),
        pytest.param({"alg": "HS256", "crit": ["b64"], "b64": True}, id="crit-b64"),
        pytest.param({"alg": "HS256", "crit": []}, id="crit-empty"),
        pytest.param({"alg": "HS256", "crit": ["alg"]}, id="crit-alg"),
        pytest.param({"alg": "HS256", "crit": "exp", "exp": 1}, id="crit-string"),
        pytest.param(
            {
                "alg": "HS256",
                "crit": ["http://example.invalid/UNDEFINED"],
                "http://example.invalid/UNDEFINED": True,
            },
            id="crit-rfc7515-a5-undefined",
        ),
        pytest.param({"alg": "HS256", "crit": ["x-absent"]}, id="crit-names-absent-parameter"),
        pytest.param({"alg": "HS256", "crit": [1]}, id="crit-number"),
        pytest.param({"alg": "HS256", "crit": None}, id="crit-null"),
    ],
)
def test_crit_ignored_cve_2026_32597(header: dict[str, Any]) -> None:
    token = make_token(header, CLAIMS, hs(HS_SECRET))
    with pytest.raises(UnsupportedHeaderError) as jws_info:
        jws.verify(token, HS_KEY, algorithms=["HS256"])
    check(jws_info.value, UnsupportedHeaderError, "unsupported_header")
    with pytest.raises(UnsupportedHeaderError) as jwt_info:
        decode_hs(token)
    check(jwt_info.value, UnsupportedHeaderError, "unsupported_header")


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"crit": ["exp"], "exp": 1}, id="crit"),
        pytest.param({"b64": False, "crit": ["b64"]}, id="b64-false"),
        pytest.param({"zip": "DEF"}, id="zip"),
        pytest.param({"enc": "A256GCM"}, id="enc"),
    ],
)
def test_crit_ignored_cve_2026_32597_never_produced(headers: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError) as info:
        jws.sign(b"payload", HS_KEY, headers=headers)
    check(info.value, ConfigurationError, "configuration_error")


# -- 17. b64: false (RFC 7797) ------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "payload_segment"),
    [
        pytest.param({"alg": "HS256", "b64": False, "crit": ["b64"]}, "abcd", id="b64-false-crit"),
        pytest.param({"alg": "HS256", "b64": False}, "abcd", id="b64-false-without-crit"),
        pytest.param({"alg": "HS256", "b64": True, "crit": ["b64"]}, "abcd", id="b64-true-crit"),
        pytest.param({"alg": "HS256", "b64": True}, "abcd", id="b64-true-without-crit"),
        pytest.param({"alg": "HS256", "b64": "false"}, "abcd", id="b64-string"),
    ],
)
@pytest.mark.parametrize("detached", [False, True], ids=["attached", "detached"])
def test_b64_false_rfc7797_confusion(
    header: dict[str, Any], payload_segment: str, detached: bool
) -> None:
    # With b64 false the signing input is ASCII(header) "." payload octets: for "abcd"
    # that text is also a valid compact token whose payload decodes to other octets.
    h64 = b64u(octets(header))
    mac = b64u(hmac.digest(HS_SECRET, f"{h64}.{payload_segment}".encode(), "sha256"))
    token = f"{h64}.{'' if detached else payload_segment}.{mac}"
    with pytest.raises(UnsupportedHeaderError) as info:
        jws.verify(token, HS_KEY, algorithms=["HS256"])
    check(info.value, UnsupportedHeaderError, "unsupported_header")


# -- 18. JSON / compact polyglot ------------------------------------------------------


def _polyglots() -> dict[str, str]:
    h, p, s = make_token({"alg": "HS256", "typ": "JWT"}, CLAIMS, hs(HS_SECRET)).split(".")
    forged = b64u(octets({**CLAIMS, "sub": "admin", "role": "admin"}))
    return {
        # python-jwt CVE-2022-39227: jwcrypto verifies the JSON form; python-jwt read
        # the claims from the compact-looking member name.
        "python-jwt-polyglot": (
            f'{{"  {h}.{forged}.":"","protected":"{h}","payload":"{p}","signature":"{s}"}}'
        ),
        "flattened-json": json.dumps({"protected": h, "payload": p, "signature": s}),
        "general-json": json.dumps(
            {"payload": p, "signatures": [{"protected": h, "signature": s}]}
        ),
        "json-array": json.dumps([h, p, s]),
        "compact-then-json": f"{h}.{p}.{s}." + json.dumps({"payload": forged}),
    }


@pytest.mark.parametrize("form", sorted(_polyglots()))
@pytest.mark.parametrize("as_bytes", [False, True], ids=["str", "bytes"])
def test_json_compact_polyglot_cve_2022_39227(form: str, as_bytes: bool) -> None:
    text = _polyglots()[form]
    token: str | bytes = text.encode() if as_bytes else text
    with pytest.raises(MalformedTokenError) as jwt_info:
        decode_hs(token)
    check(jwt_info.value, MalformedTokenError, "malformed_token")
    with pytest.raises(MalformedTokenError) as jws_info:
        jws.verify(token, HS_KEY, algorithms=["HS256"])
    check(jws_info.value, MalformedTokenError, "malformed_token")


# -- 19. JWS / JWE substitution ------------------------------------------------------


def _jwe_compact() -> str:
    header = {"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": "rsa-1"}
    return ".".join(
        [b64u(octets(header)), b64u(bytes(256)), b64u(bytes(12)), b64u(b"ct"), b64u(bytes(16))]
    )


def _nested(cty: str | None) -> str:
    inner = f"{b64u(octets({'alg': 'none'}))}.{b64u(octets({**CLAIMS, 'sub': 'admin'}))}."
    header: dict[str, Any] = {"alg": "HS256"}
    if cty is not None:
        header["cty"] = cty
    return make_token(header, inner.encode(), hs(HS_SECRET))


@pytest.mark.parametrize(
    ("build", "error", "code"),
    [
        pytest.param(_jwe_compact, MalformedTokenError, "malformed_token", id="jwe-five-segments"),
        pytest.param(
            lambda: make_token({"alg": "HS256", "enc": "A256GCM"}, CLAIMS, hs(HS_SECRET)),
            UnsupportedHeaderError,
            "unsupported_header",
            id="enc-in-jws-header",
        ),
        pytest.param(
            lambda: make_token({"alg": "RSA-OAEP"}, CLAIMS, hs(HS_SECRET)),
            AlgorithmNotAllowedError,
            "algorithm_not_allowed",
            id="jwe-key-management-alg",
        ),
        pytest.param(
            lambda: _nested("JWT"),
            UnsupportedHeaderError,
            "unsupported_header",
            id="nested-unsigned-jwt-cty-cve-2026-29000",
        ),
        pytest.param(
            lambda: _nested("application/jwt"),
            UnsupportedHeaderError,
            "unsupported_header",
            id="nested-cty-media-type",
        ),
        pytest.param(
            lambda: _nested(None),
            MalformedTokenError,
            "malformed_token",
            id="nested-without-cty",
        ),
    ],
)
def test_jws_jwe_substitution_cve_2022_3102(
    build: Callable[[], str], error: type[TokenwardError], code: str
) -> None:
    token = build()
    with pytest.raises(error) as info:
        decode_hs(token)
    check(info.value, error, code)


# -- 20. token bombs: zip and PBES2 p2c -----------------------------------------------


def _deflate_bomb() -> str:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = compressor.compress(b'{"sub":"' + b"A" * 2**20 + b'"}') + compressor.flush()
    return make_token({"alg": "HS256", "zip": "DEF"}, bomb, hs(HS_SECRET))


def _pbes2_jwe() -> str:
    header = {"alg": "PBES2-HS512+A256KW", "enc": "A256GCM", "p2s": b64u(bytes(16)), "p2c": 2**31}
    return ".".join(
        [b64u(octets(header)), b64u(bytes(40)), b64u(bytes(12)), "Y3Q", b64u(bytes(16))]
    )


@pytest.mark.parametrize(
    ("build", "error", "code"),
    [
        pytest.param(_deflate_bomb, UnsupportedHeaderError, "unsupported_header", id="zip-def"),
        pytest.param(_pbes2_jwe, MalformedTokenError, "malformed_token", id="pbes2-p2c-jwe"),
        pytest.param(
            lambda: make_token({"alg": "PBES2-HS256+A128KW", "p2c": 2**31}, CLAIMS, hs(HS_SECRET)),
            AlgorithmNotAllowedError,
            "algorithm_not_allowed",
            id="pbes2-alg-in-jws",
        ),
    ],
)
def test_token_bomb_zip_pbes2_cve_2024_33664_cve_2023_6681(
    build: Callable[[], str], error: type[TokenwardError], code: str
) -> None:
    token = build()
    with pytest.raises(error) as jws_info:
        jws.verify(token, HS_KEY, algorithms=["HS256"])
    check(jws_info.value, error, code)
    with pytest.raises(error) as jwt_info:
        decode_hs(token)
    check(jwt_info.value, error, code)


# -- 21. unbounded input and deep nesting ---------------------------------------------


def _nested_claims(depth: int) -> bytes:
    return b'{"a":' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"


_DEFAULT_HEADER = {"alg": "HS256"}


@pytest.mark.parametrize(
    ("build", "max_size", "error", "code"),
    [
        pytest.param(
            lambda: make_token(_DEFAULT_HEADER, {"sub": "a" * 9000}, hs(HS_SECRET)),
            None,
            MalformedTokenError,
            "malformed_token",
            id="over-default-8kib-cap",
        ),
        pytest.param(
            lambda: make_token(_DEFAULT_HEADER, {"sub": "a" * 9000}, hs(HS_SECRET)).encode(),
            None,
            MalformedTokenError,
            "malformed_token",
            id="over-default-cap-bytes",
        ),
        pytest.param(
            lambda: make_token(_DEFAULT_HEADER, CLAIMS, hs(HS_SECRET)) + "A" * 2**20,
            HARD_MAX_SIZE,
            MalformedTokenError,
            "malformed_token",
            id="megabyte-signature",
        ),
        pytest.param(
            lambda: make_token({"alg": "HS256", "x": "a" * 5000}, CLAIMS, hs(HS_SECRET)),
            HARD_MAX_SIZE,
            MalformedTokenError,
            "malformed_token",
            id="header-over-4kib",
        ),
        pytest.param(
            lambda: make_token(
                b'{"alg":"HS256","x":' + b"[" * 100 + b"]" * 100 + b"}", CLAIMS, hs(HS_SECRET)
            ),
            None,
            MalformedTokenError,
            "malformed_token",
            id="header-nested-100-deep",
        ),
        pytest.param(
            lambda: make_token(_DEFAULT_HEADER, _nested_claims(65), hs(HS_SECRET)),
            None,
            MalformedTokenError,
            "malformed_token",
            id="claims-nested-65-deep",
        ),
        pytest.param(
            lambda: make_token(_DEFAULT_HEADER, _nested_claims(10_000), hs(HS_SECRET)),
            HARD_MAX_SIZE,
            MalformedTokenError,
            "malformed_token",
            id="claims-nested-10000-deep",
        ),
        pytest.param(
            lambda: make_token(
                _DEFAULT_HEADER, b'{"a":' + b'{"a":' * 20_000 + b"1" + b"}" * 20_001, hs(HS_SECRET)
            ),
            HARD_MAX_SIZE,
            MalformedTokenError,
            "malformed_token",
            id="claims-nested-objects-20000-deep",
        ),
        pytest.param(
            lambda: "A" * (HARD_MAX_SIZE + 1),
            HARD_MAX_SIZE,
            MalformedTokenError,
            "malformed_token",
            id="over-hard-cap",
        ),
        pytest.param(
            lambda: make_token(_DEFAULT_HEADER, CLAIMS, hs(HS_SECRET)),
            HARD_MAX_SIZE + 1,
            ConfigurationError,
            "configuration_error",
            id="cap-above-hard-maximum",
        ),
    ],
)
def test_unbounded_input_deep_nesting_cve_2025_53864(
    build: Callable[[], str | bytes], max_size: int | None, error: type[TokenwardError], code: str
) -> None:
    token = build()
    options: dict[str, Any] = {} if max_size is None else {"max_size": max_size}
    with pytest.raises(error) as info:
        decode_hs(token, **options)
    check(info.value, error, code)


def test_unbounded_input_deep_nesting_cve_2025_53864_depth_64_accepted() -> None:
    token = make_token(_DEFAULT_HEADER, _nested_claims(64), hs(HS_SECRET))
    assert decode_hs(token) == json.loads(_nested_claims(64))


# -- 22. duplicate member names --------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "payload"),
    [
        pytest.param(b'{"alg":"HS256","alg":"none"}', octets(CLAIMS), id="header-alg-last-none"),
        pytest.param(b'{"alg":"none","alg":"HS256"}', octets(CLAIMS), id="header-alg-first-none"),
        pytest.param(
            b'{"alg":"HS256","\\u0061lg":"HS256"}', octets(CLAIMS), id="header-alg-escaped-twin"
        ),
        pytest.param(
            b'{"alg":"HS256","kid":"hs-1","kid":"other"}', octets(CLAIMS), id="header-kid"
        ),
        pytest.param(b'{"alg":"HS256","crit":["x"],"crit":[]}', octets(CLAIMS), id="header-crit"),
        pytest.param(b'{"alg":"HS256"}', b'{"sub":"alice","sub":"admin"}', id="claims-sub"),
        pytest.param(b'{"alg":"HS256"}', b'{"exp":1,"exp":99999999999}', id="claims-exp"),
        pytest.param(
            b'{"alg":"HS256"}', b'{"aud":"api","\\u0061ud":"other"}', id="claims-escaped-aud"
        ),
        pytest.param(b'{"alg":"HS256"}', b'{"a":{"role":"user","role":"admin"}}', id="nested"),
    ],
)
def test_duplicate_member_names_parser_differential(header: bytes, payload: bytes) -> None:
    token = make_token(header, payload, hs(HS_SECRET))
    with pytest.raises(MalformedTokenError) as info:
        decode_hs(token)
    check(info.value, MalformedTokenError, "malformed_token")


# -- 23. non-canonical base64url -----------------------------------------------------

_H64 = b64u(octets({"alg": "HS256"}))
# b"\xfb\xef\xbe\xff\xfe" encodes as "----__4": both URL-safe characters, length 4k+3.
_P_BYTES = b"\xfb\xef\xbe\xff\xfe"
_P64 = b64u(_P_BYTES)
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _bump_last(segment: str) -> str:
    # The next alphabet character differs only in the unused low bits.
    return segment[:-1] + _ALPHABET[_ALPHABET.index(segment[-1]) + 1]


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda p: p + "=", id="padding"),
        pytest.param(lambda p: p + "==", id="double-padding"),
        pytest.param(lambda p: p.translate(str.maketrans("-_", "+/")), id="standard-alphabet"),
        pytest.param(_bump_last, id="non-zero-trailing-bits"),
        pytest.param(lambda p: p[:3] + " " + p[3:], id="inner-space"),
        pytest.param(lambda p: p[:3] + "\n" + p[3:], id="inner-newline"),
        pytest.param(lambda p: p[:3] + "\r\n" + p[3:], id="inner-crlf"),
        pytest.param(lambda p: p + "AA", id="impossible-length"),
        pytest.param(lambda p: p[:-1] + "\u00e9", id="non-ascii"),
        pytest.param(lambda p: p[:-1] + "\uff41", id="fullwidth-letter"),
    ],
)
def test_non_canonical_base64url_signed_payload(mutate: Callable[[str], str]) -> None:
    # The MAC is computed over the non-canonical text itself, so only a strict decoder
    # (not the signature check) can refuse it (jwcrypto re-encoded and accepted these).
    p64 = mutate(_P64)
    assert p64 != _P64
    h64 = _H64
    mac = b64u(hmac.digest(HS_SECRET, f"{h64}.{p64}".encode(), "sha256"))
    with pytest.raises(MalformedTokenError) as info:
        jws.verify(f"{h64}.{p64}.{mac}", HS_KEY, algorithms=["HS256"])
    check(info.value, MalformedTokenError, "malformed_token")


def test_non_canonical_base64url_signed_payload_control() -> None:
    token = sign_segments(_H64, _P64, hs(HS_SECRET))
    assert _P64 == "----__4"
    assert jws.verify(token, HS_KEY, algorithms=["HS256"]) == _P_BYTES


_CANONICAL = sign_segments(_H64, _P64, hs(HS_SECRET))


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda t: t + "=", id="signature-padding"),
        pytest.param(_bump_last, id="signature-trailing-bits"),
        pytest.param(lambda t: t[:-5] + " " + t[-5:], id="signature-space"),
        pytest.param(lambda t: t + "AA", id="signature-impossible-length"),
        pytest.param(lambda t: "=" + t, id="header-leading-padding"),
        pytest.param(lambda t: " " + t, id="leading-space"),
        pytest.param(lambda t: t + "\n", id="trailing-newline"),
        pytest.param(lambda t: "\t" + t + "\r\n", id="surrounding-whitespace"),
        pytest.param(lambda t: "Bearer " + t, id="bearer-prefix"),
        pytest.param(lambda t: f'"{t}"', id="quoted"),
        pytest.param(lambda t: t + ".", id="trailing-dot"),
        pytest.param(lambda t: t.replace(".", "..", 1), id="double-dot"),
    ],
)
def test_non_canonical_base64url_token_text(mutate: Callable[[str], str]) -> None:
    token = mutate(_CANONICAL)
    assert token != _CANONICAL
    with pytest.raises(MalformedTokenError) as info:
        jws.verify(token, HS_KEY, algorithms=["HS256"])
    check(info.value, MalformedTokenError, "malformed_token")


# -- 24. UTF-16, NaN and trailing garbage in JSON ------------------------------------

_SUB = '{"sub":"alice"}'


@pytest.mark.parametrize(
    ("header", "payload"),
    [
        pytest.param(_DEFAULT_HEADER, _SUB.encode("utf-16"), id="claims-utf16-bom"),
        pytest.param(_DEFAULT_HEADER, _SUB.encode("utf-16-be"), id="claims-utf16-be"),
        pytest.param(_DEFAULT_HEADER, _SUB.encode("utf-16-le"), id="claims-utf16-le"),
        pytest.param(_DEFAULT_HEADER, _SUB.encode("utf-32"), id="claims-utf32"),
        pytest.param(_DEFAULT_HEADER, b"\xef\xbb\xbf" + _SUB.encode(), id="claims-utf8-bom"),
        pytest.param(_DEFAULT_HEADER, b'{"sub":"\xff"}', id="claims-invalid-utf8"),
        pytest.param(_DEFAULT_HEADER, b'{"sub":"\xc0\xaf"}', id="claims-overlong-utf8"),
        pytest.param(_DEFAULT_HEADER, b'{"sub":"\xed\xa0\x80"}', id="claims-utf8-surrogate"),
        pytest.param(_DEFAULT_HEADER, b'{"sub":"\\ud800"}', id="claims-lone-surrogate-escape"),
        pytest.param(_DEFAULT_HEADER, b'{"x":["\\udfff"]}', id="claims-nested-lone-surrogate"),
        pytest.param(_DEFAULT_HEADER, b'{"exp":NaN}', id="claims-exp-nan"),
        pytest.param(_DEFAULT_HEADER, b'{"exp":Infinity}', id="claims-exp-infinity"),
        pytest.param(_DEFAULT_HEADER, b'{"nbf":-Infinity}', id="claims-nbf-negative-infinity"),
        pytest.param(_DEFAULT_HEADER, b'{"exp":1e400}', id="claims-exp-float-overflow"),
        pytest.param(_DEFAULT_HEADER, b'{"tag":"value"}ABCD', id="claims-trailing-garbage"),
        pytest.param(_DEFAULT_HEADER, b'{"a":1}{"b":2}', id="claims-two-objects"),
        pytest.param(_DEFAULT_HEADER, b'{"sub":"a"/*c*/}', id="claims-comment"),
        pytest.param(_DEFAULT_HEADER, b"{'sub':'alice'}", id="claims-single-quotes"),
        pytest.param(_DEFAULT_HEADER, b'{"sub":"alice",}', id="claims-trailing-comma"),
        pytest.param(_DEFAULT_HEADER, b'[{"sub":"alice"}]', id="claims-top-level-array"),
        pytest.param(_DEFAULT_HEADER, b'"alice"', id="claims-top-level-string"),
        pytest.param(_DEFAULT_HEADER, b"null", id="claims-top-level-null"),
        pytest.param(_DEFAULT_HEADER, b"", id="claims-empty"),
        pytest.param('{"alg":"HS256"}'.encode("utf-16"), octets(CLAIMS), id="header-utf16"),
        pytest.param(b'\xef\xbb\xbf{"alg":"HS256"}', octets(CLAIMS), id="header-utf8-bom"),
        pytest.param(b'{"alg":"HS256"}ABCD', octets(CLAIMS), id="header-trailing-garbage"),
        pytest.param(b'{"alg":"HS256","x":NaN}', octets(CLAIMS), id="header-nan"),
        pytest.param(b'[{"alg":"HS256"}]', octets(CLAIMS), id="header-array"),
        pytest.param(
            b'{"alg":"HS256","kid":"\\udc00"}', octets(CLAIMS), id="header-lone-surrogate"
        ),
        pytest.param(b'{"alg":"HS256\xff"}', octets(CLAIMS), id="header-invalid-utf8"),
    ],
)
def test_utf16_nan_trailing_garbage_json(header: Part, payload: bytes) -> None:
    token = make_token(header, payload, hs(HS_SECRET))
    with pytest.raises(MalformedTokenError) as info:
        decode_hs(token)
    check(info.value, MalformedTokenError, "malformed_token")


def _outcome(call: Callable[[], object]) -> object:
    """The call's result, or the code of the InvalidTokenError it raised."""
    try:
        return call()
    except InvalidTokenError as exc:
        return exc.code


@pytest.mark.parametrize(
    ("claim", "value", "may_pass"),
    [
        pytest.param("exp", 10**400, True, id="exp-far-future"),
        pytest.param("exp", -(10**400), False, id="exp-far-past"),
        pytest.param("nbf", 10**400, False, id="nbf-far-future"),
        pytest.param("nbf", -(10**400), True, id="nbf-far-past"),
        pytest.param("iat", 10**400, False, id="iat-far-future"),
    ],
)
def test_utf16_nan_trailing_garbage_json_huge_integer_numericdate(
    claim: str, value: int, may_pass: bool
) -> None:
    # A JSON integer beyond the range of a double is a finite number, so the profile
    # lets the codec accept it (where that is safe) or refuse it; what it must never
    # do is leak OverflowError from its time arithmetic (SECURITY_PROFILE R62).
    token = make_token(_DEFAULT_HEADER, b'{"%s":%d}' % (claim.encode(), value), hs(HS_SECRET))
    outcome = _outcome(lambda: decode_hs(token))
    refusals = {"malformed_token", "invalid_claim", "token_expired", "token_not_yet_valid"}
    if may_pass and isinstance(outcome, dict):
        assert outcome == {claim: value}
    else:
        assert outcome in refusals


@pytest.mark.parametrize(
    "claims",
    [{"exp": 10**400}, {"nbf": -(10**400)}, {"iat": 10**400}],
    ids=["exp-far-future", "nbf-far-past", "iat-far-future"],
)
def test_utf16_nan_trailing_garbage_json_huge_integer_encode(claims: dict[str, int]) -> None:
    # The producer may mint such a token or refuse it with ConfigurationError; the
    # only wrong answer is an OverflowError from its own range check.
    try:
        outcome = jwt.encode(claims, HS_KEY)
    except ConfigurationError as exc:
        outcome = exc.code
    assert outcome == "configuration_error" or outcome.count(".") == 2


def test_utf16_nan_trailing_garbage_json_huge_integer_now() -> None:
    token = make_token(_DEFAULT_HEADER, CLAIMS, hs(HS_SECRET))
    with pytest.raises(ConfigurationError) as info:
        jwt.decode(token, HS_KEY, algorithms=["HS256"], now=10**400)
    check(info.value, ConfigurationError, "configuration_error")


# -- 25. claim type confusion -------------------------------------------------------


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        pytest.param("exp", str(NOW + 3600), id="exp-string"),
        pytest.param("exp", True, id="exp-true"),
        pytest.param("exp", False, id="exp-false"),
        pytest.param("exp", None, id="exp-null"),
        pytest.param("exp", [NOW + 3600], id="exp-array"),
        pytest.param("exp", {"$gt": 0}, id="exp-object"),
        pytest.param("nbf", True, id="nbf-true"),
        pytest.param("nbf", "0", id="nbf-string"),
        pytest.param("nbf", None, id="nbf-null"),
        pytest.param("iat", str(NOW), id="iat-string"),
        pytest.param("iat", False, id="iat-false"),
        pytest.param("iss", 1, id="iss-number"),
        pytest.param("sub", 12345, id="sub-number"),
        pytest.param("sub", None, id="sub-null"),
        pytest.param("jti", ["a"], id="jti-array"),
    ],
)
def test_claim_type_confusion_cve_2026_25537(claim: str, value: object) -> None:
    token = make_token(_DEFAULT_HEADER, {"sub": "alice", claim: value}, hs(HS_SECRET))
    with pytest.raises(ClaimError) as info:
        decode_hs(token)
    check(info.value, ClaimError, "invalid_claim")
    assert (info.value.claim, info.value.reason) == (claim, "type")


# -- 26. exp boundary / leeway ------------------------------------------------------


@pytest.mark.parametrize(
    ("exp", "now", "leeway", "accepted"),
    [
        pytest.param(NOW, NOW, 0, False, id="exp-equals-now"),
        pytest.param(NOW + 1, NOW, 0, True, id="exp-one-second-ahead"),
        pytest.param(NOW - 1, NOW, 0, False, id="exp-one-second-ago"),
        pytest.param(NOW - 10, NOW, 10, False, id="exp-plus-leeway-equals-now"),
        pytest.param(NOW - 9, NOW, 10, True, id="exp-within-leeway"),
        pytest.param(NOW + 0.5, NOW + 0.4, 0, True, id="fractional-exp-not-truncated"),
        pytest.param(NOW + 0.5, NOW + 0.5, 0, False, id="fractional-exp-equals-now"),
        pytest.param(NOW, NOW - 0.001, 0, True, id="exp-just-ahead"),
    ],
)
def test_exp_boundary_leeway_off_by_one(
    exp: float, now: float, leeway: float, accepted: bool
) -> None:
    claims = {"sub": "alice", "exp": exp}
    token = make_token(_DEFAULT_HEADER, claims, hs(HS_SECRET))
    if accepted:
        assert jwt.decode(token, HS_KEY, algorithms=["HS256"], now=now, leeway=leeway) == claims
        return
    with pytest.raises(ExpiredTokenError) as info:
        jwt.decode(token, HS_KEY, algorithms=["HS256"], now=now, leeway=leeway)
    check(info.value, ExpiredTokenError, "token_expired")
    assert (info.value.claim, info.value.reason) == ("exp", "expired")


# -- 27. nbf / iat in the future ---------------------------------------------------


@pytest.mark.parametrize(
    ("claim", "value", "leeway", "accepted"),
    [
        pytest.param("nbf", NOW + 1, 0, False, id="nbf-one-second-ahead"),
        pytest.param("nbf", NOW, 0, True, id="nbf-equals-now"),
        pytest.param("nbf", NOW + 0.5, 0, False, id="fractional-nbf-not-truncated"),
        pytest.param("nbf", NOW + 30, 30, True, id="nbf-at-leeway"),
        pytest.param("nbf", NOW + 30.5, 30, False, id="nbf-beyond-leeway"),
        pytest.param("iat", NOW + 1, 0, False, id="iat-one-second-ahead"),
        pytest.param("iat", NOW, 0, True, id="iat-equals-now"),
        pytest.param("iat", NOW + 30, 30, True, id="iat-at-leeway"),
        pytest.param("iat", NOW + 30.5, 30, False, id="iat-beyond-leeway"),
        pytest.param("iat", NOW + 10**9, 300, False, id="iat-far-future"),
    ],
)
def test_nbf_iat_in_future(claim: str, value: float, leeway: float, accepted: bool) -> None:
    claims = {"sub": "alice", claim: value}
    token = make_token(_DEFAULT_HEADER, claims, hs(HS_SECRET))
    if accepted:
        assert decode_hs(token, leeway=leeway) == claims
        return
    with pytest.raises(ImmatureTokenError) as info:
        decode_hs(token, leeway=leeway)
    check(info.value, ImmatureTokenError, "token_not_yet_valid")
    assert (info.value.claim, info.value.reason) == (claim, "future")


# -- 28. audience bypass ------------------------------------------------------------

_ABSENT = object()


@pytest.mark.parametrize(
    ("aud", "audience", "error", "reason"),
    [
        pytest.param(_ABSENT, "api", MissingClaimError, "missing", id="missing-aud"),
        pytest.param("api", None, ClaimError, "unexpected", id="unsolicited-aud"),
        pytest.param(["api"], None, ClaimError, "unexpected", id="unsolicited-aud-array"),
        pytest.param("api.evil.example", "api", ClaimError, "mismatch", id="prefix-match"),
        pytest.param("ap", "api", ClaimError, "mismatch", id="substring-match"),
        pytest.param("API", "api", ClaimError, "mismatch", id="case-folded"),
        pytest.param(" api", "api", ClaimError, "mismatch", id="leading-space"),
        pytest.param(["other"], "api", ClaimError, "mismatch", id="array-other"),
        pytest.param([], "api", ClaimError, "mismatch", id="empty-array"),
        pytest.param("api", ["web", "admin"], ClaimError, "mismatch", id="not-in-accepted-list"),
        pytest.param([1], "api", ClaimError, "type", id="array-of-number-cve-2020-26160"),
        pytest.param([["api"]], "api", ClaimError, "type", id="nested-array"),
        pytest.param(["api", None], "api", ClaimError, "type", id="array-with-null"),
        pytest.param({"api": True}, "api", ClaimError, "type", id="object"),
        pytest.param(None, "api", ClaimError, "type", id="null"),
        pytest.param(1, "api", ClaimError, "type", id="number"),
    ],
)
def test_audience_bypass_cve_2020_26160(
    aud: object, audience: str | list[str] | None, error: type[ClaimError], reason: str
) -> None:
    claims: dict[str, Any] = {"sub": "alice", "exp": NOW + 60}
    if aud is not _ABSENT:
        claims["aud"] = aud
    token = make_token(_DEFAULT_HEADER, claims, hs(HS_SECRET))
    with pytest.raises(error) as info:
        decode_hs(token, audience=audience)
    check(info.value, error, error.code)
    assert (info.value.claim, info.value.reason) == ("aud", reason)


@pytest.mark.parametrize(
    ("aud", "audience"),
    [("api", "api"), (["web", "api"], "api"), ("api", ["web", "api"])],
    ids=["string", "array-contains", "accepted-list"],
)
def test_audience_bypass_cve_2020_26160_control(aud: object, audience: object) -> None:
    claims = {"sub": "alice", "aud": aud}
    token = make_token(_DEFAULT_HEADER, claims, hs(HS_SECRET))
    assert decode_hs(token, audience=audience) == claims


# -- 29. issuer bypass --------------------------------------------------------------

_ISSUER = "https://auth.ex\u00e4mple"


@pytest.mark.parametrize(
    ("iss", "issuer", "error", "reason"),
    [
        pytest.param(_ABSENT, _ISSUER, MissingClaimError, "missing", id="missing-iss"),
        pytest.param("auth.ex\u00e4mple", _ISSUER, ClaimError, "mismatch", id="substring"),
        pytest.param(_ISSUER[:-1], _ISSUER, ClaimError, "mismatch", id="truncated"),
        pytest.param(_ISSUER + ".evil", _ISSUER, ClaimError, "mismatch", id="suffix-extended"),
        pytest.param(_ISSUER.upper(), _ISSUER, ClaimError, "mismatch", id="case-folded"),
        pytest.param(
            unicodedata.normalize("NFD", _ISSUER), _ISSUER, ClaimError, "mismatch", id="nfd-form"
        ),
        pytest.param(_ISSUER + "/", _ISSUER, ClaimError, "mismatch", id="trailing-slash"),
        pytest.param(
            "https://auth.ex\u00e4mple https://login.example",
            [_ISSUER, "https://login.example"],
            ClaimError,
            "mismatch",
            id="joined-accepted-list",
        ),
        pytest.param([_ISSUER], _ISSUER, ClaimError, "type", id="array-cve-2025-30144"),
        pytest.param(None, _ISSUER, ClaimError, "type", id="null"),
    ],
)
def test_issuer_bypass_cve_2024_53861(
    iss: object, issuer: str | list[str], error: type[ClaimError], reason: str
) -> None:
    claims: dict[str, Any] = {"sub": "alice"}
    if iss is not _ABSENT:
        claims["iss"] = iss
    token = make_token(_DEFAULT_HEADER, claims, hs(HS_SECRET))
    with pytest.raises(error) as info:
        decode_hs(token, issuer=issuer)
    check(info.value, error, error.code)
    assert (info.value.claim, info.value.reason) == ("iss", reason)


# -- 30. cross-JWT confusion -------------------------------------------------------

AT_KEY = Key.generate("ES256", kid="at-1")
ID_KEY = Key.generate("ES256", kid="id-1")
AT_VERIFIER = KeySet([AT_KEY.public_key()])


@pytest.mark.parametrize(
    ("key", "typ", "aud", "error", "code"),
    [
        pytest.param(AT_KEY, "JWT", "api", InvalidTypeError, "invalid_typ", id="typ-jwt"),
        pytest.param(AT_KEY, None, "api", InvalidTypeError, "invalid_typ", id="typ-missing"),
        pytest.param(AT_KEY, "at+jwt ", "api", InvalidTypeError, "invalid_typ", id="typ-space"),
        pytest.param(
            AT_KEY, "dpop+jwt", "api", InvalidTypeError, "invalid_typ", id="typ-other-kind"
        ),
        pytest.param(
            AT_KEY, "at+jwt", "client-app", ClaimError, "invalid_claim", id="aud-of-id-token"
        ),
        pytest.param(ID_KEY, "at+jwt", "api", KeyNotFoundError, "key_not_found", id="id-token-key"),
    ],
)
def test_cross_jwt_confusion_rfc8725(
    key: Key, typ: str | None, aud: str, error: type[TokenwardError], code: str
) -> None:
    # The ID token (or a look-alike) presented where an RFC 9068 access token is expected.
    claims = {"iss": "https://auth.example", "sub": "alice", "aud": aud, "exp": NOW + 60}
    token = jwt.encode(claims, key, typ=typ)
    with pytest.raises(error) as info:
        jwt.decode(
            token,
            AT_VERIFIER,
            algorithms=["ES256"],
            issuer="https://auth.example",
            audience="api",
            typ="at+jwt",
            now=NOW,
        )
    check(info.value, error, code)


@pytest.mark.parametrize("typ", ["at+jwt", "AT+JWT", "application/at+jwt", "Application/At+JWT"])
def test_cross_jwt_confusion_rfc8725_control(typ: str) -> None:
    claims = {"iss": "https://auth.example", "sub": "alice", "aud": "api", "exp": NOW + 60}
    token = jwt.encode(claims, AT_KEY, typ=typ)
    decoded = jwt.decode(
        token, AT_VERIFIER, algorithms=["ES256"], audience="api", typ="at+jwt", now=NOW
    )
    assert decoded == claims


# -- 31. key / alg mismatch inside a family --------------------------------------------

_SECRET_64 = hashlib.sha512(b"tokenward attack tests: 64-octet secret").digest()
_P384 = ec.generate_private_key(ec.SECP384R1())


@pytest.mark.parametrize(
    ("alg", "sign", "key"),
    [
        pytest.param(
            "PS256", ps(RSA_PRIVATE, hashes.SHA256(), 32), RSA_KEY, id="rs256-key-ps256-token"
        ),
        pytest.param("RS256", rs(RSA_PRIVATE, hashes.SHA256()), RSA_PS_KEY, id="ps256-key-rs256"),
        pytest.param("RS512", rs(RSA_PRIVATE, hashes.SHA512()), RSA_KEY, id="rs256-key-rs512"),
        pytest.param(
            "HS256",
            hs(_SECRET_64),
            Key.from_secret(_SECRET_64, alg="HS512"),
            id="hs512-key-hs256-token",
        ),
        pytest.param(
            "HS512",
            hs(_SECRET_64, "sha512"),
            Key.from_secret(_SECRET_64, alg="HS256"),
            id="hs256-key-hs512-token",
        ),
        pytest.param(
            "ES256",
            es(_P384, hashes.SHA256(), 48),
            Key.from_pem(spki_pem(_P384)),
            id="p384-key-es256-token",
        ),
        pytest.param(
            "ES256",
            es(EC_PRIVATE["ES256K"], hashes.SHA256(), 32),
            Key.from_pem(spki_pem(EC_PRIVATE["ES256K"])),
            id="secp256k1-key-es256-token",
        ),
        pytest.param(
            "ES256K",
            es256(),
            Key.from_pem(spki_pem(EC_PRIVATE["ES256"])),
            id="p256-key-es256k-token",
        ),
        pytest.param(
            "Ed448",
            ed(ED25519_PRIVATE),
            Key.from_pem(spki_pem(ED25519_PRIVATE)),
            id="ed25519-key-ed448-token",
        ),
        pytest.param("Ed25519", ed(ED25519_PRIVATE), ED25519_KEY, id="eddsa-key-ed25519-token"),
        pytest.param(
            "EdDSA",
            ed(ED448_PRIVATE),
            Key.from_pem(spki_pem(ED448_PRIVATE), alg="Ed448"),
            id="ed448-key-eddsa-token",
        ),
    ],
)
def test_key_alg_mismatch_within_family(alg: str, sign: Signer, key: Key) -> None:
    # Every algorithm is allowed; the key alone decides which one may be used with it.
    token = make_token({"alg": alg}, CLAIMS, sign)
    with pytest.raises(KeyMismatchError) as info:
        jwt.decode(token, key, algorithms=ALL_ALGS, now=NOW)
    check(info.value, KeyMismatchError, "key_mismatch")


# -- 32. weak keys ------------------------------------------------------------------

RSA_1024 = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
_RSA_N = RSA_PRIVATE.public_key().public_numbers().n


def _uint(value: int) -> str:
    return b64u(value.to_bytes((value.bit_length() + 7) // 8, "big"))


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: Key.from_pem(spki_pem(RSA_1024)), id="rsa-1024-public-pem"),
        pytest.param(
            lambda: Key.from_pem(spki_pem(RSA_1024), alg="RS256"), id="rsa-1024-pem-rs256"
        ),
        pytest.param(
            lambda: Key.from_pem(
                RSA_1024.private_bytes(
                    PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                )
            ),
            id="rsa-1024-private-pem",
        ),
        pytest.param(
            lambda: Key.from_jwk(
                {"kty": "RSA", "n": _uint(RSA_1024.public_key().public_numbers().n), "e": "AQAB"}
            ),
            id="rsa-1024-jwk",
        ),
        pytest.param(lambda: Key.generate("RS256", rsa_bits=1024), id="rsa-1024-generate"),
        pytest.param(lambda: Key.generate("PS256", rsa_bits=2047), id="rsa-2047-generate"),
        pytest.param(
            lambda: Key.from_jwk({"kty": "RSA", "n": _uint(_RSA_N), "e": "AQ"}), id="rsa-e-1"
        ),
        pytest.param(
            lambda: Key.from_jwk({"kty": "RSA", "n": _uint(_RSA_N), "e": "Ag"}), id="rsa-e-2"
        ),
        pytest.param(
            lambda: Key.from_jwk({"kty": "RSA", "n": _uint(_RSA_N), "e": _uint(_RSA_N)}),
            id="rsa-e-equals-n",
        ),
        pytest.param(lambda: Key.from_secret(bytes(16), alg="HS256"), id="hmac-16-octets"),
        pytest.param(
            lambda: Key.from_pem(spki_pem(dsa.generate_private_key(1024))),  # type: ignore[arg-type]  # noqa: S505
            id="dsa-legacy-cve-2022-23539",
        ),
        pytest.param(
            lambda: Key.from_pem(spki_pem(ec.generate_private_key(ec.SECP224R1()))),
            id="ec-p224",
        ),
        pytest.param(
            lambda: Key.from_pem(
                x25519.X25519PrivateKey.generate().public_key().public_bytes(PEM, SPKI)
            ),
            id="x25519-key-agreement",
        ),
        pytest.param(
            lambda: Key.from_pem(
                x448.X448PrivateKey.generate().public_key().public_bytes(PEM, SPKI)
            ),
            id="x448-key-agreement",
        ),
    ],
)
def test_weak_keys_cve_2022_23539(make: Callable[[], Key]) -> None:
    with pytest.raises(InvalidKeyError) as info:
        make()
    check(info.value, InvalidKeyError, "invalid_key")


# -- 33. invalid EC points / wrong curve ------------------------------------------

_P256_PRIME = 2**256 - 2**224 + 2**192 + 2**96 - 1
_N256 = EC_CURVES["ES256"][4]


def _coord(value: int, size: int = 32) -> str:
    return b64u(value.to_bytes(size, "big"))


def _ec_jwk(alg: str) -> dict[str, str]:
    _, crv, _, size, _ = EC_CURVES[alg]
    return ec_public_jwk(EC_PRIVATE[alg].public_key(), crv, size)


_P256_NUMBERS = EC_PRIVATE["ES256"].public_key().public_numbers()


@pytest.mark.parametrize(
    "jwk",
    [
        pytest.param(
            {**_ec_jwk("ES256"), "y": _coord((_P256_NUMBERS.y + 1) % _P256_PRIME)},
            id="off-curve-y-plus-one",
        ),
        pytest.param({**_ec_jwk("ES256"), "x": _coord(0), "y": _coord(0)}, id="origin"),
        pytest.param(
            {**_ec_jwk("ES256"), "x": _coord(_P256_NUMBERS.x + _P256_PRIME, 33)},
            id="x-plus-prime",
        ),
        pytest.param({**_ec_jwk("ES256"), "x": _coord(_P256_PRIME)}, id="x-equals-prime"),
        pytest.param({**_ec_jwk("ES256"), "crv": "P-384"}, id="p256-point-labelled-p384"),
        pytest.param({**_ec_jwk("ES384"), "crv": "P-256"}, id="p384-point-labelled-p256"),
        pytest.param({**_ec_jwk("ES256K"), "crv": "P-256"}, id="secp256k1-point-labelled-p256"),
        pytest.param({**_ec_jwk("ES256"), "crv": "secp256k1"}, id="p256-point-labelled-k1"),
        pytest.param({**_ec_jwk("ES256"), "crv": "P-192"}, id="unsupported-curve"),
        pytest.param({**_ec_jwk("ES256"), "crv": "Ed25519"}, id="okp-curve-on-ec-key"),
        pytest.param({k: v for k, v in _ec_jwk("ES256").items() if k != "y"}, id="missing-y"),
        pytest.param({**_ec_jwk("ES256"), "d": _coord(_N256)}, id="private-scalar-equals-order"),
        pytest.param({**_ec_jwk("ES256"), "d": _coord(0)}, id="private-scalar-zero"),
        pytest.param({**_ec_jwk("ES256"), "d": _coord(1)}, id="private-scalar-mismatch"),
    ],
)
def test_invalid_ec_point_wrong_curve_wycheproof(jwk: dict[str, str]) -> None:
    with pytest.raises(InvalidKeyError) as info:
        Key.from_jwk(jwk)
    check(info.value, InvalidKeyError, "invalid_key")


# -- 34. use / key_ops misuse ---------------------------------------------------------


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param({"use": "enc"}, id="use-enc"),
        pytest.param({"use": "enc", "key_ops": ["verify"]}, id="use-enc-key-ops-verify"),
        pytest.param({"use": "SIG"}, id="use-uppercase"),
        pytest.param({"key_ops": ["encrypt"]}, id="key-ops-encrypt"),
        pytest.param({"key_ops": ["sign"]}, id="key-ops-sign-only"),
        pytest.param({"key_ops": ["wrapKey", "unwrapKey"]}, id="key-ops-wrap"),
        pytest.param({"key_ops": []}, id="key-ops-empty"),
    ],
)
@pytest.mark.parametrize("via_keyset", [False, True], ids=["jwk", "jwks"])
def test_wrong_use_key_ops_wycheproof(extra: dict[str, Any], via_keyset: bool) -> None:
    jwk = {**_ec_jwk("ES256"), "kid": "ec-1", "alg": "ES256", **extra}
    verifier: Key | KeySet = KeySet.from_jwks({"keys": [jwk]}) if via_keyset else Key.from_jwk(jwk)
    token = make_token({"alg": "ES256", "kid": "ec-1"}, CLAIMS, es256())
    with pytest.raises(KeyMismatchError) as info:
        jwt.decode(token, verifier, algorithms=["ES256"], now=NOW)
    check(info.value, KeyMismatchError, "key_mismatch")


# -- 35. HMAC timing side channel ----------------------------------------------------


@pytest.mark.parametrize(
    ("tamper", "full_length"),
    [
        pytest.param(lambda m: m[:-1] + bytes([m[-1] ^ 1]), True, id="last-octet-flipped"),
        pytest.param(lambda m: bytes([m[0] ^ 0x80]) + m[1:], True, id="first-octet-flipped"),
        pytest.param(lambda m: bytes(len(m)), True, id="all-zero"),
        pytest.param(lambda m: m[:16], False, id="truncated-to-16"),
        pytest.param(lambda m: m[:-1], False, id="truncated-by-one"),
        pytest.param(lambda m: m + b"\x00", False, id="extended-by-one"),
    ],
)
def test_hmac_timing_side_channel_cve_2016_7036(
    monkeypatch: pytest.MonkeyPatch, tamper: Callable[[bytes], bytes], full_length: bool
) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real_compare = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real_compare(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    key = Key.from_secret(HS_SECRET, alg="HS256")  # built after the patch, so it binds the spy
    signing_input = f"{b64u(octets(_DEFAULT_HEADER))}.{b64u(octets(CLAIMS))}"
    mac = hmac.digest(HS_SECRET, signing_input.encode(), "sha256")

    assert decode_hs(f"{signing_input}.{b64u(mac)}") == CLAIMS  # sanity: HS_KEY accepts it
    assert jwt.decode(f"{signing_input}.{b64u(mac)}", key, algorithms=["HS256"], now=NOW)
    assert compared == [(mac, mac)]  # the genuine MAC went through compare_digest
    compared.clear()

    token = f"{signing_input}.{b64u(tamper(mac))}"
    with pytest.raises(BadSignatureError) as info:
        jwt.decode(token, key, algorithms=["HS256"], now=NOW)
    check(info.value, BadSignatureError, "bad_signature")
    # Full-length MACs are compared in constant time; other lengths never reach a
    # comparison at all (the length is public, the MAC is not).
    assert compared == ([(mac, tamper(mac))] if full_length else [])
