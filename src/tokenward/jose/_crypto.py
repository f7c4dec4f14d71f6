"""Signature primitives per algorithm family, built once per key (RFC 7518 sec. 3, RFC 8037).

Each builder returns a closure bound to one key and one algorithm, so the hot path does
no dispatch, no key-type tests and no object construction beyond what ``cryptography``
needs. Verifier closures return ``True`` only for a signature of exactly the right
length that verifies; every other outcome, including any complaint from the crypto
layer about the signature's form, is ``False`` (SECURITY_PROFILE R27-R32: fail closed,
uniformly, with no oracle).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from tokenward.errors import InvalidKeyError
from tokenward.jose._algorithms import Algorithm

__all__ = [
    "CURVE_ORDERS",
    "PrivateKey",
    "PublicKey",
    "Signer",
    "Verifier",
    "build_signer",
    "build_verifier",
]

Verifier = Callable[[bytes, bytes], bool]
Signer = Callable[[bytes], bytes]
#: A header segment that verified under a key: the parsed header, its ``alg`` and the
#: verification closure chosen for it (see ``_compact.verify_compact``).
VerifiedHeader = tuple[dict[str, Any], str, Verifier]

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}

# Group orders (SEC 2 v2 sec. 2.4.2, 2.5.1, 2.6.1 and 2.4.1 for secp256k1). A test
# checks each against the curve: the scalar n-1 is a valid private key, n is not.
CURVE_ORDERS: dict[str, int] = {
    "P-256": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    "P-384": int(
        "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF"
        "581A0DB248B0A77AECEC196ACCC52973",
        16,
    ),
    "P-521": int(
        "01" + "FF" * 32 + "FA51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409",
        16,
    ),
    "secp256k1": 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141,
}

PublicKey = (
    rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey
)
PrivateKey = (
    rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
)


def _hash(alg: Algorithm) -> type[hashes.HashAlgorithm]:
    return _HASHES[alg.hash_name or "sha256"]


def _pss(hash_cls: type[hashes.HashAlgorithm]) -> padding.PSS:
    # RFC 7518 sec. 3.5: MGF1 with the same hash, salt as long as the hash output,
    # exactly; never PSS.AUTO or MAX_LENGTH, which would accept other salt lengths.
    return padding.PSS(mgf=padding.MGF1(hash_cls()), salt_length=hash_cls().digest_size)


# RFC 2104: the key, padded to the hash's block, XORed with 0x36 (inner) and 0x5C (outer).
_INNER_PAD = bytes(octet ^ 0x36 for octet in range(256))
_OUTER_PAD = bytes(octet ^ 0x5C for octet in range(256))


def _hmac_of(secret: bytes, name: str) -> Callable[[bytes], bytes]:
    """HMAC (RFC 2104) with the keyed inner and outer hash states computed once per key.

    Each MAC copies the two states, where ``hmac.digest`` hashes the key blocks again,
    and it runs in C calls only (``hmac.HMAC`` adds a Python frame per method).
    """
    block = hashlib.new(name).block_size
    key = hashlib.new(name, secret).digest() if len(secret) > block else secret
    key = key.ljust(block, b"\0")
    inner = hashlib.new(name, key.translate(_INNER_PAD))
    outer = hashlib.new(name, key.translate(_OUTER_PAD))

    def mac(message: bytes) -> bytes:
        state = inner.copy()
        state.update(message)
        result = outer.copy()
        result.update(state.digest())
        return result.digest()

    return mac


def _hmac_verifier(alg: Algorithm, secret: bytes) -> Verifier:
    mac = _hmac_of(secret, alg.hash_name or "sha256")
    size = alg.signature_size
    same = hmac.compare_digest

    def verify(signing_input: bytes, signature: bytes) -> bool:
        # RFC 7518 sec. 3.2: the full-length MAC, compared in constant time.
        return len(signature) == size and same(mac(signing_input), signature)

    return verify


def _rsa_verifier(alg: Algorithm, public: rsa.RSAPublicKey) -> Verifier:
    hash_cls = _hash(alg)
    hash_obj = hash_cls()
    pad = padding.PKCS1v15() if alg.family == "RSA-PKCS1" else _pss(hash_cls)
    # RFC 8017 sec. 8.2.2 step 1: the signature is exactly k octets.
    size = (public.key_size + 7) // 8
    check = public.verify

    def verify(signing_input: bytes, signature: bytes) -> bool:
        if len(signature) != size:
            return False
        try:
            check(signature, signing_input, pad, hash_obj)
        except (InvalidSignature, ValueError):
            return False
        return True

    return verify


def _ecdsa_verifier(alg: Algorithm, public: ec.EllipticCurvePublicKey, crv: str) -> Verifier:
    scheme = ec.ECDSA(_hash(alg)())
    size = alg.signature_size
    half = size // 2
    order = CURVE_ORDERS[crv]
    check = public.verify
    from_bytes = int.from_bytes

    def verify(signing_input: bytes, signature: bytes) -> bool:
        # RFC 7518 sec. 3.4: R || S, each exactly half the signature, big-endian. r and
        # s must lie in [1, n-1] (CVE-2022-21449, "psychic signatures").
        if len(signature) != size:
            return False
        r = from_bytes(signature[:half], "big")
        s = from_bytes(signature[half:], "big")
        if not (0 < r < order and 0 < s < order):
            return False
        try:
            check(encode_dss_signature(r, s), signing_input, scheme)
        except (InvalidSignature, ValueError):
            return False
        return True

    return verify


def _eddsa_verifier(public: ed25519.Ed25519PublicKey | ed448.Ed448PublicKey) -> Verifier:
    # RFC 8032 sec. 5.1.7 / 5.2.7; OpenSSL refuses S >= L (malleability).
    size = 64 if isinstance(public, ed25519.Ed25519PublicKey) else 114
    check = public.verify

    def verify(signing_input: bytes, signature: bytes) -> bool:
        if len(signature) != size:
            return False
        try:
            check(signature, signing_input)
        except (InvalidSignature, ValueError):
            return False
        return True

    return verify


def build_verifier(alg: Algorithm, material: bytes | PublicKey, crv: str | None) -> Verifier:
    """Return the verification closure for ``alg`` over ``material`` (already vetted)."""
    family = alg.family
    if family == "HMAC" and isinstance(material, bytes):
        return _hmac_verifier(alg, material)
    if family in ("RSA-PKCS1", "RSA-PSS") and isinstance(material, rsa.RSAPublicKey):
        return _rsa_verifier(alg, material)
    if family == "ECDSA" and isinstance(material, ec.EllipticCurvePublicKey) and crv:
        return _ecdsa_verifier(alg, material, crv)
    if family == "EdDSA" and isinstance(material, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return _eddsa_verifier(material)
    raise InvalidKeyError(f"{alg.name} cannot be used with this key")


def _ecdsa_signer(alg: Algorithm, private: ec.EllipticCurvePrivateKey) -> Signer:
    # RFC 6979 deterministic nonces: no dependence on the RNG at signing time.
    scheme = ec.ECDSA(_hash(alg)(), deterministic_signing=True)
    half = alg.signature_size // 2
    ec_sign = private.sign

    def sign(signing_input: bytes) -> bytes:
        r, s = decode_dss_signature(ec_sign(signing_input, scheme))
        return r.to_bytes(half, "big") + s.to_bytes(half, "big")

    return sign


def _rsa_signer(alg: Algorithm, private: rsa.RSAPrivateKey) -> Signer:
    hash_cls = _hash(alg)
    pad = padding.PKCS1v15() if alg.family == "RSA-PKCS1" else _pss(hash_cls)
    rsa_sign = private.sign
    hash_obj = hash_cls()
    return lambda signing_input: rsa_sign(signing_input, pad, hash_obj)


def build_signer(alg: Algorithm, material: bytes | PrivateKey) -> Signer:
    """Return the signing closure for ``alg`` with ``material`` (already vetted)."""
    family = alg.family
    if family == "HMAC" and isinstance(material, bytes) and alg.hash_name:
        return _hmac_of(material, alg.hash_name)
    if family in ("RSA-PKCS1", "RSA-PSS") and isinstance(material, rsa.RSAPrivateKey):
        return _rsa_signer(alg, material)
    if family == "ECDSA" and isinstance(material, ec.EllipticCurvePrivateKey):
        return _ecdsa_signer(alg, material)
    if family == "EdDSA" and isinstance(
        material, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey
    ):
        return material.sign
    raise InvalidKeyError(f"{alg.name} cannot sign with this key")
