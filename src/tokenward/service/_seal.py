"""The sealed successor: how a replayed refresh gets the byte-identical pair back.

When a refresh token rotates, the winner stores its new pair encrypted with AES-256-GCM
under a key derived (HKDF-SHA256, RFC 5869) from the presented refresh token's ``jti``.
A racing request that presents the same token within the grace window derives the same
key and opens the same pair. The store holds only ``SHA-256(jti)`` and the ciphertext:
neither opens the envelope (HKDF output is independent of the SHA-256 hash), so a
database dump yields no usable token.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["open_successor", "seal_successor"]

_INFO = b"tokenward/successor/v1"
_NONCE = 12


def _key(jti: str, sid: str) -> AESGCM:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=sid.encode(), info=_INFO)
    return AESGCM(hkdf.derive(jti.encode()))


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
