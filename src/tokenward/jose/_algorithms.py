"""The algorithm registry: one declarative, immutable table (RFC 7518, 8037, 8812, 9864).

Each entry carries the constraints a key must meet to be used with it: key type, curve,
hash, minimum key size and the exact signature length. ``none`` is not in the table and
cannot be added: the table is a read-only mapping built once at import.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

__all__ = ["ALGORITHMS", "Algorithm", "Family"]

Family = Literal["HMAC", "RSA-PKCS1", "RSA-PSS", "ECDSA", "EdDSA"]


@dataclass(frozen=True, slots=True)
class Algorithm:
    """One JWS algorithm and the key it needs.

    ``curves`` lists the curves a key may have (EC and OKP); ``min_key_size`` is in
    octets for HMAC secrets and in bits for RSA moduli; ``signature_size`` is the exact
    signature length in octets where the algorithm fixes it (HMAC, ECDSA; EdDSA per curve).
    """

    name: str
    family: Family
    kty: str
    hash_name: str | None
    curves: tuple[str, ...] = ()
    min_key_size: int = 0
    signature_size: int = 0
    deterministic: bool = True


def _table() -> dict[str, Algorithm]:
    algs = [
        Algorithm("HS256", "HMAC", "oct", "sha256", min_key_size=32, signature_size=32),
        Algorithm("HS384", "HMAC", "oct", "sha384", min_key_size=48, signature_size=48),
        Algorithm("HS512", "HMAC", "oct", "sha512", min_key_size=64, signature_size=64),
        Algorithm("RS256", "RSA-PKCS1", "RSA", "sha256", min_key_size=2048),
        Algorithm("RS384", "RSA-PKCS1", "RSA", "sha384", min_key_size=2048),
        Algorithm("RS512", "RSA-PKCS1", "RSA", "sha512", min_key_size=2048),
        Algorithm("PS256", "RSA-PSS", "RSA", "sha256", min_key_size=2048, deterministic=False),
        Algorithm("PS384", "RSA-PSS", "RSA", "sha384", min_key_size=2048, deterministic=False),
        Algorithm("PS512", "RSA-PSS", "RSA", "sha512", min_key_size=2048, deterministic=False),
        Algorithm("ES256", "ECDSA", "EC", "sha256", ("P-256",), signature_size=64),
        Algorithm("ES384", "ECDSA", "EC", "sha384", ("P-384",), signature_size=96),
        Algorithm("ES512", "ECDSA", "EC", "sha512", ("P-521",), signature_size=132),
        Algorithm("ES256K", "ECDSA", "EC", "sha256", ("secp256k1",), signature_size=64),
        # RFC 8037: polymorphic EdDSA, the curve comes from the key.
        Algorithm("EdDSA", "EdDSA", "OKP", None, ("Ed25519", "Ed448")),
        # RFC 9864: fully specified names that fix the curve.
        Algorithm("Ed25519", "EdDSA", "OKP", None, ("Ed25519",), signature_size=64),
        Algorithm("Ed448", "EdDSA", "OKP", None, ("Ed448",), signature_size=114),
    ]
    return {alg.name: alg for alg in algs}


ALGORITHMS: MappingProxyType[str, Algorithm] = MappingProxyType(_table())
"""Every supported algorithm by its JOSE name. ``none`` is deliberately absent."""
