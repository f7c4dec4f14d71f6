"""JWS in compact serialization (RFC 7515): sign octets, verify them back.

>>> from tokenward.jose import Key, jws
>>> key = Key.generate("EdDSA", kid="k1")
>>> token = jws.sign(b"hello", key)
>>> jws.verify(token, key.public_key(), algorithms=["EdDSA"])
b'hello'

Only the compact serialization is accepted; the JSON serializations, detached or
unencoded payloads (RFC 7797) and JWE are refused (SECURITY_PROFILE R1, R5, R45).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from tokenward.jose._b64 import decode_segment
from tokenward.jose._compact import (
    DEFAULT_MAX_SIZE,
    HARD_MAX_SIZE,
    allowlist,
    check_max_size,
    parse_header,
    sign_compact,
    split_octets,
    verify_compact,
)
from tokenward.jose._keys import Key
from tokenward.jose._keyset import KeyResolver

__all__ = ["UnverifiedJWS", "inspect_unverified", "sign", "verify", "verify_with_header"]


def sign(
    payload: bytes,
    key: Key,
    *,
    alg: str | None = None,
    headers: Mapping[str, Any] | None = None,
) -> str:
    """Sign ``payload`` and return the compact JWS.

    ``alg`` defaults to the key's bound algorithm; ``headers`` adds protected header
    parameters (``alg`` may not be changed; ``crit``, ``b64`` and ``zip`` are refused).
    """
    if type(payload) is not bytes:
        raise TypeError("payload must be bytes")
    return sign_compact(payload, key, alg, headers)


def verify_with_header(
    token: str | bytes,
    key: Key | KeyResolver,
    *,
    algorithms: Collection[str],
    max_size: int = DEFAULT_MAX_SIZE,
) -> tuple[dict[str, Any], bytes]:
    """Verify a compact JWS and return ``(protected header, payload)``."""
    if max_size != DEFAULT_MAX_SIZE:
        check_max_size(max_size)
    header, payload = verify_compact(token, key, allowlist(algorithms), max_size)
    return dict(header), payload


def verify(
    token: str | bytes,
    key: Key | KeyResolver,
    *,
    algorithms: Collection[str],
    max_size: int = DEFAULT_MAX_SIZE,
) -> bytes:
    """Verify a compact JWS and return its payload octets; raise on any failure.

    ``algorithms`` is required and has no default (RFC 8725 sec. 3.1). ``key`` is a
    :class:`Key` or a key set; with a key set the token's ``kid`` selects the key.
    Every error is an :class:`~tokenward.errors.InvalidTokenError` (or a
    :class:`~tokenward.errors.ConfigurationError` for a bad allow-list).
    """
    return verify_with_header(token, key, algorithms=algorithms, max_size=max_size)[1]


@dataclass(frozen=True, slots=True)
class UnverifiedJWS:
    """A JWS taken apart without verification. Nothing in it may be trusted."""

    header: dict[str, Any]
    payload: bytes
    signature: bytes


def inspect_unverified(token: str | bytes) -> UnverifiedJWS:
    """Take a compact JWS apart WITHOUT verifying it, for debugging only."""
    _, h64, p64, s64 = split_octets(token, HARD_MAX_SIZE)
    return UnverifiedJWS(parse_header(h64), decode_segment(p64), decode_segment(s64))
