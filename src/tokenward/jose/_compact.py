"""JWS compact serialization: the shared parse/verify and sign paths (RFC 7515 sec. 5, 7.1).

Order of work for verification, cheapest first, so that garbage costs almost nothing:
type and size, one regular expression for the three-segment shape and the base64url
alphabet, the header (strict JSON), ``alg`` against the allow-list, header parameters,
key selection, then the signature over the received text (RFC 7515 sec. 5.2 step 8:
never over a re-encoding). The payload is decoded only after the signature verified.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from tokenward.errors import (
    AlgorithmNotAllowedError,
    BadSignatureError,
    ConfigurationError,
    KeyNotFoundError,
    MalformedTokenError,
    UnsupportedHeaderError,
)
from tokenward.jose._algorithms import ALGORITHMS
from tokenward.jose._b64 import b64u_encode, decode_segment, decode_strict
from tokenward.jose._crypto import VerifiedHeader
from tokenward.jose._json import dumps, loads_object
from tokenward.jose._keys import Key
from tokenward.jose._keyset import KeyResolver, KeySet

__all__ = [
    "DEFAULT_MAX_SIZE",
    "HARD_MAX_SIZE",
    "allowlist",
    "check_max_size",
    "sign_compact",
    "split_compact",
    "split_octets",
    "verify_compact",
]

DEFAULT_MAX_SIZE = 8 * 1024
"""Default cap on token length, checked before any decoding (SECURITY_PROFILE R2)."""
HARD_MAX_SIZE = 256 * 1024
"""No configuration may raise the cap past this."""
_MAX_HEADER_SEGMENT = 5464  # 4 KiB of header JSON, base64url-encoded.

_ALLOWED_OCTETS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
_HEADER_MEMO_SIZE = 8
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
    if kind is frozenset and algorithms and algorithms <= _KNOWN:  # type: ignore[operator]
        return algorithms  # type: ignore[return-value]
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


def _as_octets(token: object, max_size: int) -> bytes:
    if type(token) is str:
        if len(token) > max_size:
            raise MalformedTokenError("token is larger than the configured maximum")
        try:
            return token.encode("ascii")
        except UnicodeEncodeError:
            raise MalformedTokenError("token is not ASCII") from None
    if type(token) is bytes:
        if len(token) > max_size:
            raise MalformedTokenError("token is larger than the configured maximum")
        return token
    raise MalformedTokenError("token must be str or bytes")


def _shape_problem(token: bytes) -> str:
    parts = token.count(b".") + 1
    if parts == 5:
        return "JWE tokens are not supported"
    if parts != 3:
        return f"a compact JWS has 3 segments, not {parts}"
    if token[:1] in (b"{", b"["):
        return "the JSON serialization is not supported"
    if not token.split(b".", 1)[0]:
        return "the header segment is empty"
    return "a segment holds characters outside the base64url alphabet"


def split_octets(
    token: object, max_size: int = DEFAULT_MAX_SIZE
) -> tuple[bytes, bytes, bytes, bytes]:
    """Check size, alphabet and shape; return ``(raw, header, payload, signature)`` octets.

    ``raw`` is the whole token as ASCII octets; the signing input is its prefix.
    """
    raw = _as_octets(token, max_size)
    # One C-level pass: deleting every allowed octet must leave nothing.
    parts = raw.split(b".")
    if len(parts) != 3 or raw.translate(None, _ALLOWED_OCTETS) or not parts[0]:
        raise MalformedTokenError(_shape_problem(raw))
    h64, p64, s64 = parts
    if len(h64) > _MAX_HEADER_SEGMENT:
        raise MalformedTokenError("header is larger than 4 KiB")
    return raw, h64, p64, s64


def split_compact(token: object, max_size: int = DEFAULT_MAX_SIZE) -> tuple[str, str, str]:
    """Check size and shape; return the three base64url segments as text."""
    _, h64, p64, s64 = split_octets(token, max_size)
    return h64.decode(), p64.decode(), s64.decode()


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


def parse_header(h64: str | bytes) -> dict[str, Any]:
    """Decode and strictly parse a header segment, checking registered parameters."""
    raw = h64.encode("ascii") if isinstance(h64, str) else h64
    header = loads_object(decode_segment(raw), "header")
    if not header.keys() <= _PLAIN_HEADER:
        _check_header(header)
    else:
        kid = header.get("kid", "")
        typ = header.get("typ", "")
        if type(kid) is not str or type(typ) is not str:
            raise MalformedTokenError("header parameters 'kid' and 'typ' must be strings")
    return header


def _verify_known(
    token: object,
    memo: dict[bytes, VerifiedHeader],
    algorithms: frozenset[str],
    max_size: int,
) -> tuple[dict[str, Any], bytes] | None:
    """The common case in one pass: a token whose header segment verified before.

    Returns ``(header, payload)`` only for a token that :func:`verify_compact`'s full
    path would accept too: its size, three segments, a header segment verified before
    under this key (so parsed and checked), an allowed alg, canonical base64url payload
    and signature, and a signature that verifies. A signature that does not verify
    raises :class:`BadSignatureError`, as the full path would. Anything else is None,
    and the full path then runs: it refuses the token with the precise error, or
    accepts it.
    """
    if type(token) is str:
        if len(token) > max_size or not token.isascii():
            return None
        raw = token.encode("ascii")
    elif type(token) is bytes:
        if len(token) > max_size:
            return None
        raw = token
    else:
        return None
    parts = raw.split(b".")
    if len(parts) != 3:
        return None
    h64, p64, s64 = parts
    known = memo.get(h64)
    if known is None:
        return None
    header, alg, verify = known
    if alg not in algorithms:
        return None
    signature = decode_strict(s64)
    payload = decode_strict(p64)
    if signature is None or payload is None:
        return None
    if not verify(raw[: len(h64) + 1 + len(p64)], signature):
        # What the full path would conclude too (every check before the signature has
        # passed), without verifying a forged signature a second time.
        raise BadSignatureError("signature verification failed")
    return header, payload


def verify_compact(
    token: object,
    key: Key | KeyResolver,
    algorithms: frozenset[str],
    max_size: int = DEFAULT_MAX_SIZE,
) -> tuple[dict[str, Any], bytes]:
    """Verify a compact JWS; return ``(header, payload)`` only if every check passed.

    The header returned may be shared with later calls: callers must not change it.
    """
    if type(key) is Key or type(key) is KeySet:
        fast = _verify_known(token, key._headers, algorithms, max_size)
        if fast is not None:
            return fast
    raw, h64, p64, s64 = split_octets(token, max_size)
    # Every token signed by one key carries the same header segment. Once a token with
    # it verified, the parsed and checked header, its alg and the verification closure
    # chosen for it are remembered per verification key (a few entries, never evicted
    # by attacker input: only headers whose token verified are added, below). A Key or
    # KeySet never changes, so the same segment always selects the same closure.
    memo = key._headers if type(key) is Key or type(key) is KeySet else None
    known = memo.get(h64) if memo is not None else None
    if known is not None:
        header, alg, verify = known
        if alg not in algorithms:
            raise AlgorithmNotAllowedError("token alg is absent, malformed or not allowed")
    else:
        header = parse_header(h64)
        named = header.get("alg")
        if type(named) is not str or named not in algorithms:
            # RFC 8725 sec. 3.1; "none" can never be in a validated allow-list.
            raise AlgorithmNotAllowedError("token alg is absent, malformed or not allowed")
        alg = named
        if type(key) is Key:
            kid = header.get("kid")
            if kid is not None and key._kid is not None and kid != key._kid:
                raise KeyNotFoundError("token kid does not name the verification key")
            verify = key._verifiers.get(alg) or key.verifier_for(alg)
        elif type(key) is KeySet or isinstance(key, KeyResolver):
            # The exact-type test first: a runtime-checkable Protocol check costs far more.
            verify = key.key_for(header).verifier_for(alg)
        else:
            raise ConfigurationError("verify needs a Key, a KeySet or a KeyResolver")
    if not verify(raw[: len(h64) + 1 + len(p64)], decode_segment(s64)):
        raise BadSignatureError("signature verification failed")
    if known is None and memo is not None and len(memo) < _HEADER_MEMO_SIZE:
        memo[h64] = (header, alg, verify)
    return header, decode_segment(p64)


def _header_segment(key: Key, alg: str, extra: Mapping[str, Any] | None) -> bytes:
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
    return b64u_encode(encoded).encode("ascii")


def sign_compact(
    payload: bytes,
    key: Key,
    alg: str | None,
    extra: Mapping[str, Any] | None,
    *,
    typ: str | None = None,
) -> str:
    """Sign ``payload`` with ``key``; ``typ`` and ``extra`` add protected header parameters.

    The encoded header for ``(alg, typ)`` alone is the same for every token a key signs,
    so it is built once and remembered on the key.
    """
    if not isinstance(key, Key):
        raise ConfigurationError("signing needs a Key")
    alg, sign = key.signer_for(alg)
    if extra:
        h64 = _header_segment(key, alg, {"typ": typ, **extra} if typ is not None else extra)
    else:
        memo = key._header_segments
        cached = memo.get((alg, typ))
        if cached is None:
            cached = _header_segment(key, alg, {"typ": typ} if typ is not None else None)
            if len(memo) < _HEADER_MEMO_SIZE:
                memo[(alg, typ)] = cached
        h64 = cached
    signing_input = h64 + b"." + b64u_encode(payload).encode("ascii")
    return (signing_input + b"." + b64u_encode(sign(signing_input)).encode("ascii")).decode()


def peek_header(token: object) -> dict[str, Any]:
    """Parse a token's header without verifying anything (for key lookup and debugging)."""
    _, h64, _, _ = split_octets(token, HARD_MAX_SIZE)
    return parse_header(h64)
