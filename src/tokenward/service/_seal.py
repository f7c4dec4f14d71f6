"""The sealed successor: how a replayed refresh gets the byte-identical pair back.

When a refresh token rotates, the winner stores its new pair encrypted with AES-256-GCM
under a key derived (HKDF-SHA256, RFC 5869) from the presented refresh token's ``jti``.
A racing request that presents the same token within the grace window derives the same
key and opens the same pair. The store holds only ``SHA-256(jti)`` and the ciphertext:
neither opens the envelope (HKDF output is independent of the SHA-256 hash), so a
database dump yields no usable token.
"""

from __future__ import annotations

import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["open_successor", "seal_successor"]

_INFO = b"tokenward/successor/v1"
_NONCE = 12


def hkdf_sha256_32(ikm: bytes, *, salt: bytes, info: bytes) -> bytes:
    """HKDF-SHA256 (RFC 5869) with L = 32 octets, written out.

    One block of output is ``T(1) = HMAC(PRK, info || 0x01)`` with
    ``PRK = HMAC(salt, IKM)``: the same octets as cryptography's ``HKDF`` class, without
    building its objects on every refresh. ``salt`` must not be empty (RFC 5869 would
    then use a block of zeros; no caller here has an empty salt).
    """
    if not salt:
        raise ValueError("an empty HKDF salt is not supported here")
    prk = hmac.digest(salt, ikm, "sha256")
    return hmac.digest(prk, info + b"\x01", "sha256")


def _key(jti: str, sid: str) -> AESGCM:
    return AESGCM(hkdf_sha256_32(jti.encode(), salt=sid.encode(), info=_INFO))


def _aad(sid: str, generation: int) -> bytes:
    return f"{sid}:{generation}".encode()


def seal_successor(jti: str, sid: str, generation: int, plaintext: bytes) -> bytes:
    """Encrypt the successor pair for whoever holds the refresh token with ``jti``."""
    nonce = os.urandom(_NONCE)
    return nonce + _key(jti, sid).encrypt(nonce, plaintext, _aad(sid, generation))


def open_successor(jti: str, sid: str, generation: int, sealed: bytes) -> bytes | None:
    """Decrypt a sealed successor; None if it was not sealed for this token."""
    try:
        return _key(jti, sid).decrypt(sealed[:_NONCE], sealed[_NONCE:], _aad(sid, generation))
    except (InvalidTag, ValueError):
        return None
