"""Strict, canonical base64url (RFC 7515 sec. 2; RFC 4648 sec. 5).

``base64.urlsafe_b64decode`` silently drops characters outside the alphabet and accepts
padding, so it must never see unchecked input. Here every segment is first checked
against the unpadded alphabet, then decoded, and a final character whose unused low
bits are not zero is refused (RFC 4648 sec. 3.5 lets decoders refuse them; refusing
removes token malleability: one signature, many token strings).
"""

from __future__ import annotations

import binascii
import re

from tokenward.errors import MalformedTokenError

__all__ = [
    "b64u_decode",
    "b64u_encode",
    "decode_checked",
    "decode_segment",
    "decode_strict",
    "is_b64u",
]

_ALPHABET = re.compile(r"[A-Za-z0-9_-]*")
_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
_FROM_STANDARD = bytes.maketrans(b"+/", b"-_")
# For an encoded length of 4k+2 the last character carries 2 data bits, for 4k+3 it
# carries 4; the remaining low bits must be zero in the canonical encoding.
_CANONICAL_LAST = {
    2: frozenset("AQgw"),
    3: frozenset("AEIMQUYcgkosw048"),
}
_PADDING = (b"", b"", b"==", b"=")


def b64u_encode(data: bytes) -> str:
    """Encode octets as unpadded base64url text.

    >>> b64u_encode(b"\\xfb\\xff")
    '-_8'
    """
    return binascii.b2a_base64(data, newline=False).translate(_FROM_STANDARD).rstrip(b"=").decode()


def is_b64u(text: str) -> bool:
    """Tell whether ``text`` uses only the unpadded base64url alphabet."""
    return _ALPHABET.fullmatch(text) is not None


_CANONICAL_LAST_BYTES = {
    rem: frozenset("".join(chars).encode()) for rem, chars in _CANONICAL_LAST.items()
}


def decode_segment(segment: bytes) -> bytes:
    """Decode a segment (ASCII octets) already known to hold only base64url characters."""
    rem = len(segment) & 3
    if rem:
        if rem == 1:
            raise MalformedTokenError("base64url text has an impossible length")
        if segment[-1] not in _CANONICAL_LAST_BYTES[rem]:
            raise MalformedTokenError("base64url text has non-zero trailing bits")
    return binascii.a2b_base64(segment.translate(_TO_STANDARD) + _PADDING[rem])


# For decode_strict: base64url to standard, and the standard alphabet's own "+", "/" and
# padding "=" to "!", which binascii's strict mode refuses like any other stray octet.
_TO_STANDARD_STRICT = bytes.maketrans(b"-_+/=", b"+/!!!")


def decode_strict(segment: bytes) -> bytes | None:
    """Decode a segment of unchecked octets; None unless it is canonical base64url.

    One pass does both the alphabet check and the decoding, where
    :func:`decode_segment` needs the alphabet checked first. The caller decides what a
    refusal means (the fast path of a verifier falls back to the full checks).
    """
    rem = len(segment) & 3
    if rem and (rem == 1 or segment[-1] not in _CANONICAL_LAST_BYTES[rem]):
        return None
    try:
        return binascii.a2b_base64(
            segment.translate(_TO_STANDARD_STRICT) + _PADDING[rem], strict_mode=True
        )
    except binascii.Error:
        return None


def decode_checked(segment: str) -> bytes:
    """Decode a segment already known to hold only base64url alphabet characters."""
    rem = len(segment) & 3
    if rem:
        if rem == 1:
            raise MalformedTokenError("base64url text has an impossible length")
        if segment[-1] not in _CANONICAL_LAST[rem]:
            raise MalformedTokenError("base64url text has non-zero trailing bits")
    # bytes.translate with a 256-entry table is far cheaper than str.translate.
    return binascii.a2b_base64(segment.encode("ascii").translate(_TO_STANDARD) + _PADDING[rem])


def b64u_decode(text: str) -> bytes:
    """Decode strict, canonical, unpadded base64url text; raise on anything else.

    >>> b64u_decode("-_8")
    b'\\xfb\\xff'
    """
    if type(text) is not str or _ALPHABET.fullmatch(text) is None:
        raise MalformedTokenError("base64url text holds characters outside the alphabet")
    return decode_checked(text)
