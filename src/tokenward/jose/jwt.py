"""JWT (RFC 7519) over JWS compact serialization, with claims always validated.

>>> from tokenward.jose import Key, jwt
>>> key = Key.generate("ES256", kid="k1")
>>> token = jwt.encode({"sub": "ada", "aud": "api", "exp": 2000}, key)
>>> jwt.decode(token, key, algorithms=["ES256"], audience="api", now=1000)["sub"]
'ada'

``decode`` checks the signature and then the claims: ``exp``, ``nbf``, ``iat`` types
and times, ``iss``, ``aud`` (a token with an audience is refused when none is
expected), ``typ`` and required claims. There is no switch to skip any of them; the
only way to look inside a token without verifying it is :func:`inspect_unverified`.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tokenward.errors import ConfigurationError, UnsupportedHeaderError
from tokenward.jose._b64 import decode_segment
from tokenward.jose._claims import ClaimRules, to_timestamp
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
from tokenward.jose._json import dumps, loads_object
from tokenward.jose._keys import Key
from tokenward.jose._keyset import KeyResolver, KeySet

__all__ = [
    "ClaimRules",
    "UnverifiedJWT",
    "decode",
    "decode_with_header",
    "encode",
    "inspect_unverified",
]

_TIME_CLAIMS = ("exp", "nbf", "iat")
_STR_ONLY = frozenset({str})


def _check_outgoing(claims: Mapping[str, Any]) -> None:
    # Producer rules (RFC 7519 sec. 4.1): never mint a token our own decoder refuses.
    for name in _TIME_CLAIMS:
        value = claims.get(name)
        kind = type(value)
        if value is not None and (
            (kind is not int and kind is not float) or (kind is float and not math.isfinite(value))
        ):
            raise ConfigurationError(f"claim {name!r} must be a number of seconds")
    for name in ("iss", "sub", "jti"):
        value = claims.get(name)
        if value is not None and type(value) is not str:
            raise ConfigurationError(f"claim {name!r} must be a string")
    aud = claims.get("aud")
    if (
        aud is not None
        and type(aud) is not str
        and not (type(aud) is list and all(type(a) is str for a in aud))
    ):
        raise ConfigurationError("claim 'aud' must be a string or a list of strings")


def encode(
    claims: Mapping[str, Any],
    key: Key,
    *,
    alg: str | None = None,
    typ: str | None = "JWT",
    headers: Mapping[str, Any] | None = None,
) -> str:
    """Sign ``claims`` as a JWT; ``typ`` goes in the header (``None`` leaves it out)."""
    # The key types are collected in C (map), not by a generator step per claim.
    if (type(claims) is not dict and not isinstance(claims, Mapping)) or not {
        *map(type, claims)
    } <= _STR_ONLY:
        raise ConfigurationError("claims must be a mapping with string keys")
    _check_outgoing(claims)
    try:
        payload = dumps(claims)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"claims are not JSON-serialisable: {exc}") from None
    if typ is not None and (type(typ) is not str or not typ):
        raise ConfigurationError("typ must be a non-empty string or None")
    return sign_compact(payload, key, alg, headers, typ=typ)


_MEMO_SIZE = 8


def _frozen(value: Any) -> Any:
    # str, None and tuples hash as they are; a list becomes a tuple (order kept, so two
    # spellings of one allow-list may take two memo entries, never a wrong one).
    return tuple(value) if type(value) is list else value


def _claims(
    payload: bytes,
    header: dict[str, Any],
    rules: ClaimRules,
    now: float | int | datetime | None,
) -> dict[str, Any]:
    cty = header.get("cty")
    if cty is not None and cty.upper() in ("JWT", "APPLICATION/JWT"):
        # RFC 8725 sec. 2.8 / SECURITY_PROFILE R47: nested JWTs are never followed.
        raise UnsupportedHeaderError("nested JWTs are not supported")
    claims = loads_object(payload, "claims")
    rules.check(claims, header, now=now if type(now) is float else to_timestamp(now))
    return claims


def decode_with_header(
    token: str | bytes,
    key: Key | KeyResolver,
    *,
    algorithms: Collection[str],
    rules: ClaimRules,
    now: float | int | datetime | None = None,
    max_size: int = DEFAULT_MAX_SIZE,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Verify and validate with prepared :class:`ClaimRules`; return ``(header, claims)``."""
    if max_size != DEFAULT_MAX_SIZE:
        check_max_size(max_size)
    header, payload = verify_compact(token, key, allowlist(algorithms), max_size)
    claims = _claims(payload, header, rules, now)
    # The verified header may be a memo shared with later calls: hand out a copy.
    return dict(header), claims


def decode(
    token: str | bytes,
    key: Key | KeyResolver,
    *,
    algorithms: Collection[str],
    issuer: str | Collection[str] | None = None,
    audience: str | Collection[str] | None = None,
    leeway: float | timedelta = 0,
    typ: str | None = None,
    require: Collection[str] = (),
    now: float | int | datetime | None = None,
    max_size: int = DEFAULT_MAX_SIZE,
) -> dict[str, Any]:
    """Verify a JWT and validate its claims; return the claims exactly as decoded.

    ``now`` is Unix seconds or an aware datetime (default: the system clock).
    ``issuer`` and ``audience`` accept one value or a collection of accepted values.
    Raises :class:`~tokenward.errors.InvalidTokenError` subclasses for bad tokens and
    :class:`~tokenward.errors.ConfigurationError` for bad arguments.
    """
    # The validated allow-list and claim rules depend only on the arguments, which a
    # caller repeats on every call; they are remembered on the key object (like its
    # header memo), so a repeated call skips re-validating them.
    memo = key._decode_memo if type(key) is Key or type(key) is KeySet else None
    memo_key = None
    if memo is not None:
        memo_key = (
            _frozen(algorithms), _frozen(issuer), _frozen(audience), leeway, typ, _frozen(require)
        )  # fmt: skip
        try:
            prepared = memo.get(memo_key)
        except TypeError:  # an unhashable argument: validate as usual, remember nothing
            memo_key = prepared = None
    else:
        prepared = None
    if prepared is None:
        prepared = (
            allowlist(algorithms),
            ClaimRules.create(
                issuer=issuer, audience=audience, leeway=leeway, typ=typ, require=require
            ),
        )
        if memo is not None and memo_key is not None and len(memo) < _MEMO_SIZE:
            memo[memo_key] = prepared
    if max_size != DEFAULT_MAX_SIZE:
        check_max_size(max_size)
    header, payload = verify_compact(token, key, prepared[0], max_size)
    return _claims(payload, header, prepared[1], now)


@dataclass(frozen=True, slots=True)
class UnverifiedJWT:
    """A JWT taken apart without verification. Nothing in it may be trusted."""

    header: dict[str, Any]
    claims: dict[str, Any]
    signature: bytes


def inspect_unverified(token: str | bytes) -> UnverifiedJWT:
    """Show a JWT's header and claims WITHOUT verifying anything, for debugging only.

    The result is not a verified token: never use it to make an access decision.
    """
    _, h64, p64, s64 = split_octets(token, HARD_MAX_SIZE)
    header = parse_header(h64)
    return UnverifiedJWT(header, loads_object(decode_segment(p64), "claims"), decode_segment(s64))
