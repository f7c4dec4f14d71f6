"""JWS compact serialization: the shared parse/verify and sign paths (RFC 7515 sec. 5, 7.1).

Order of work for verification, cheapest first, so that garbage costs almost nothing:
type and size, one regular expression for the three-segment shape and the base64url
alphabet, the header (strict JSON), ``alg`` against the allow-list, header parameters,
key selection, then the signature over the received text (RFC 7515 sec. 5.2 step 8:
never over a re-encoding). The payload is decoded only after the signature verified.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any, cast

from tokenward.errors import (
    AlgorithmNotAllowedError,
    BadSignatureError,
    ConfigurationError,
    KeyNotFoundError,
    MalformedTokenError,
    UnsupportedHeaderError,
)
from tokenward.jose._algorithms import ALGORITHMS
from tokenward.jose._b64 import b64u_encode, decode_checked
from tokenward.jose._json import dumps, loads_object
from tokenward.jose._keys import Key
from tokenward.jose._keyset import KeyResolver

__all__ = [
    "DEFAULT_MAX_SIZE",
    "HARD_MAX_SIZE",
    "allowlist",
    "check_max_size",
    "sign_compact",
    "split_compact",
    "verify_compact",
]

DEFAULT_MAX_SIZE = 8 * 1024
"""Default cap on token length, checked before any decoding (SECURITY_PROFILE R2)."""
HARD_MAX_SIZE = 256 * 1024
"""No configuration may raise the cap past this."""
_MAX_HEADER_SEGMENT = 5464  # 4 KiB of header JSON, base64url-encoded.

_COMPACT = re.compile(r"([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]*)\.([A-Za-z0-9_-]*)")
_PLAIN_HEADER = frozenset({"alg", "typ", "kid"})
# RFC 7515 sec. 4.1: registered parameters that must be strings when present.
_STRING_PARAMS = ("kid", "typ", "cty", "jku", "x5u", "x5t", "x5t#S256")
# Parameters that only make sense for JWE or for extensions this profile refuses.
_REFUSED_PARAMS = {
    "crit": "critical header extensions are not supported (RFC 7515 sec. 4.1.11)",
    "b64": "unencoded payloads (RFC 7797) are not supported",
    "zip": "compressed payloads are a JWE feature and are never decompressed",
    "enc": "JWE is not supported",
}
_KNOWN = frozenset(ALGORITHMS)


def allowlist(algorithms: Collection[str]) -> frozenset[str]:
    """Validate a caller's allow-list once and return it as a frozenset.

    There is no default (RFC 8725 sec. 3.1): it must be a non-empty collection of
    supported names. A bare string is refused, since ``"S256" in "HS256"`` is True.
    """
    kind = type(algorithms)
    if kind is frozenset:
        ready = cast("frozenset[str]", algorithms)
        if ready and ready <= _KNOWN:
            return ready
    if (
        kind is not list
        and kind is not tuple
        and (isinstance(algorithms, str | bytes) or not isinstance(algorithms, Collection))
    ):
        raise ConfigurationError("algorithms must be a list of names, such as ['ES256']")
    try:
        names = frozenset(algorithms)
    except TypeError:
        raise ConfigurationError("algorithms must be a list of names") from None
    if not names:
        raise ConfigurationError("algorithms must not be empty (RFC 8725 sec. 3.1)")
    if not names <= _KNOWN:
        unknown = sorted(str(name) for name in names - _KNOWN)
        raise ConfigurationError(f"unsupported algorithms in allow-list: {unknown}")
    return names


def check_max_size(max_size: int) -> int:
    """Refuse token size caps that are not positive or exceed :data:`HARD_MAX_SIZE`."""
    if type(max_size) is not int or not 0 < max_size <= HARD_MAX_SIZE:
        raise ConfigurationError(f"max_size must be an int in 1..{HARD_MAX_SIZE}")
    return max_size


def _as_text(token: object, max_size: int) -> str:
    if type(token) is bytes:
        if len(token) > max_size:
            raise MalformedTokenError("token is larger than the configured maximum")
        try:
            return token.decode("ascii")
        except UnicodeDecodeError:
            raise MalformedTokenError("token is not ASCII") from None
    if type(token) is not str:
        raise MalformedTokenError("token must be str or bytes")
    return token


def _shape_problem(token: str) -> str:
    parts = token.count(".") + 1
    if parts == 5:
        return "JWE tokens are not supported"
    if parts != 3:
        return f"a compact JWS has 3 segments, not {parts}"
    if token[:1] in ("{", "["):
        return "the JSON serialization is not supported"
    if not token.split(".", 1)[0]:
        return "the header segment is empty"
    return "a segment holds characters outside the base64url alphabet"


def split_compact(token: object, max_size: int = DEFAULT_MAX_SIZE) -> tuple[str, str, str]:
    """Check size and shape; return the three base64url segments."""
    text = _as_text(token, max_size)
    if len(text) > max_size:
        raise MalformedTokenError("token is larger than the configured maximum")
    match = _COMPACT.fullmatch(text)
    if match is None:
        raise MalformedTokenError(_shape_problem(text))
    h64, p64, s64 = match.groups()
    if len(h64) > _MAX_HEADER_SEGMENT:
        raise MalformedTokenError("header is larger than 4 KiB")
    return h64, p64, s64


def _check_header(header: Mapping[str, Any]) -> None:
    for name, reason in _REFUSED_PARAMS.items():
        if name in header:
            raise UnsupportedHeaderError(reason)
    for name in _STRING_PARAMS:
        value = header.get(name, "")
        if type(value) is not str:
            raise MalformedTokenError(f"header parameter {name!r} must be a string")
    x5c = header.get("x5c", [])
    if type(x5c) is not list or not all(type(c) is str for c in x5c):
        raise MalformedTokenError("header parameter 'x5c' must be an array of strings")
    if type(header.get("jwk", {})) is not dict:
        raise MalformedTokenError("header parameter 'jwk' must be an object")


def parse_header(h64: str) -> dict[str, Any]:
    """Decode and strictly parse a header segment, checking registered parameters."""
    header = loads_object(decode_checked(h64), "header")
    if not header.keys() <= _PLAIN_HEADER:
        _check_header(header)
    else:
        kid = header.get("kid", "")
        typ = header.get("typ", "")
        if type(kid) is not str or type(typ) is not str:
            raise MalformedTokenError("header parameters 'kid' and 'typ' must be strings")
    return header


def verify_compact(
    token: object,
    key: Key | KeyResolver,
    algorithms: frozenset[str],
    max_size: int = DEFAULT_MAX_SIZE,
) -> tuple[dict[str, Any], bytes]:
    """Verify a compact JWS; return ``(header, payload)`` only if every check passed."""
    h64, p64, s64 = split_compact(token, max_size)
    header = parse_header(h64)
    alg = header.get("alg")
    if type(alg) is not str or alg not in algorithms:
        # RFC 8725 sec. 3.1; "none" can never be in a validated allow-list.
        raise AlgorithmNotAllowedError("token alg is absent, malformed or not allowed")
    if type(key) is Key:
        kid = header.get("kid")
        if kid is not None and key._kid is not None and kid != key._kid:
            raise KeyNotFoundError("token kid does not name the verification key")
        verify = key._verifiers.get(alg) or key.verifier_for(alg)
    elif isinstance(key, KeyResolver):
        verify = key.key_for(header).verifier_for(alg)
    else:
        raise ConfigurationError("verify needs a Key, a KeySet or a KeyResolver")
    signature = decode_checked(s64)
    signing_input = f"{h64}.{p64}".encode("ascii")
    if not verify(signing_input, signature):
        raise BadSignatureError("signature verification failed")
    return header, decode_checked(p64)


def sign_compact(
    payload: bytes,
    key: Key,
    alg: str | None,
    extra: Mapping[str, Any] | None,
) -> str:
    """Sign ``payload`` with ``key``; ``extra`` adds protected header parameters."""
    if not isinstance(key, Key):
        raise ConfigurationError("signing needs a Key")
    alg, sign = key.signer_for(alg)
    header: dict[str, Any] = {"alg": alg}
    if key.kid is not None:
        header["kid"] = key.kid
    if extra:
        for name, value in extra.items():
            if type(name) is not str:
                raise ConfigurationError("header parameter names must be strings")
            if name in _REFUSED_PARAMS:
                raise ConfigurationError(f"header parameter {name!r}: {_REFUSED_PARAMS[name]}")
            if name == "alg" and value != alg:
                raise ConfigurationError("headers['alg'] disagrees with the signing algorithm")
            header[name] = value
        try:
            _check_header(header)
        except MalformedTokenError as exc:
            raise ConfigurationError(exc.message) from None
    if header.get("kid") is None:
        header.pop("kid", None)
    try:
        encoded = dumps(header)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"header is not JSON-serialisable: {exc}") from None
    signing_input = f"{b64u_encode(encoded)}.{b64u_encode(payload)}"
    signature = sign(signing_input.encode("ascii"))
    return f"{signing_input}.{b64u_encode(signature)}"


def peek_header(token: object) -> dict[str, Any]:
    """Parse a token's header without verifying anything (for key lookup and debugging)."""
    h64, _, _ = split_compact(token, HARD_MAX_SIZE)
    return parse_header(h64)
