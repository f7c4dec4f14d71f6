"""JWT claims validation (RFC 7519 sec. 4.1, 7.2; RFC 8725 sec. 3.8-3.11).

Claims are always validated on decode; nothing here can be switched off, only
configured. :class:`ClaimRules` is the frozen form of a caller's configuration, built
and checked once; :meth:`ClaimRules.check` runs per token and allocates nothing on
success.

Boundaries (SECURITY_PROFILE R50-R52): a token is valid iff ``now < exp + leeway`` and
``now >= nbf - leeway``, and ``iat`` may not lie more than ``leeway`` in the future.
Registered claims are type-checked whenever present, including ``null``: time claims
must be JSON numbers (a Python ``bool`` is not), ``iss``/``sub``/``jti`` strings,
``aud`` a string or an array of strings. Strings compare by code point, with no
normalisation (RFC 7519 sec. 2).
"""

from __future__ import annotations

import math
import time
from collections.abc import Collection, Mapping
from datetime import datetime, timedelta
from typing import Any

from tokenward.errors import (
    ClaimError,
    ConfigurationError,
    ExpiredTokenError,
    ImmatureTokenError,
    InvalidTypeError,
    MissingClaimError,
)

__all__ = ["MAX_LEEWAY", "ClaimRules", "normalize_typ", "to_timestamp"]

MAX_LEEWAY = 300.0
"""Leeway beyond five minutes is refused: clock skew is small; larger values hide bugs."""
_MISSING: Any = object()


def normalize_typ(typ: str) -> str:
    """RFC 7515 sec. 4.1.9: media types compare case-insensitively, ``application/`` optional."""
    lowered = typ.lower()
    return lowered[12:] if lowered.startswith("application/") else lowered


def to_timestamp(now: float | int | datetime | None) -> float:
    """Turn ``now`` (Unix seconds, an aware datetime, or None for the clock) into seconds."""
    if now is None:
        return time.time()
    if type(now) is int or type(now) is float:
        try:
            seconds = float(now)
        except OverflowError:
            seconds = math.inf
        if not math.isfinite(seconds):
            raise ConfigurationError("now must be a finite number of seconds")
        return seconds
    if isinstance(now, datetime):
        if now.tzinfo is None or now.utcoffset() is None:
            raise ConfigurationError("now must be an aware datetime (naive times are ambiguous)")
        return now.timestamp()
    raise ConfigurationError("now must be Unix seconds, an aware datetime or None")


def _strings(value: object, name: str) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return frozenset((value,))
    if not isinstance(value, Collection) or isinstance(value, bytes):
        raise ConfigurationError(f"{name} must be a string or a collection of strings")
    try:
        values = frozenset(value)
    except TypeError:
        raise ConfigurationError(f"{name} must be strings") from None
    if not values or not all(type(v) is str for v in values):
        raise ConfigurationError(f"{name} must be non-empty strings")
    return values


def _is_finite_float(value: object) -> bool:
    return type(value) is float and math.isfinite(value)


def _time_type(name: str) -> ClaimError:
    return ClaimError(f"claim {name!r} must be a NumericDate", claim=name, reason="type")


class ClaimRules:
    """What a decoder expects of a token's claims and ``typ``; immutable, checked once.

    Build it with :meth:`create` (which validates) and derive variants with
    :meth:`replace`. It is a plain slotted class rather than a frozen dataclass because
    :func:`tokenward.jose.jwt.decode` builds one per call, and a frozen dataclass costs
    several times more to construct.

    >>> rules = ClaimRules.create(issuer="https://auth.example", audience="api")
    >>> rules.check({"iss": "https://auth.example", "aud": "api", "exp": 20}, {}, now=10)
    """

    __slots__ = ("_audiences", "_issuers", "_leeway", "_require", "_typ")

    def __init__(
        self,
        issuers: frozenset[str] | None,
        audiences: frozenset[str] | None,
        leeway: float,
        typ: str | None,
        require: tuple[str, ...],
    ) -> None:
        # Only create() and replace() call this, with validated values.
        self._issuers = issuers
        self._audiences = audiences
        self._leeway = leeway
        self._typ = typ
        self._require = require

    @classmethod
    def create(
        cls,
        *,
        issuer: str | Collection[str] | None = None,
        audience: str | Collection[str] | None = None,
        leeway: float | timedelta = 0,
        typ: str | None = None,
        require: Collection[str] = (),
    ) -> ClaimRules:
        """Validate a caller's settings and freeze them."""
        if isinstance(leeway, timedelta):
            leeway = leeway.total_seconds()
        if type(leeway) not in (int, float) or not 0 <= leeway <= MAX_LEEWAY:
            raise ConfigurationError(f"leeway must be between 0 and {MAX_LEEWAY:g} seconds")
        if typ is not None and (type(typ) is not str or not typ):
            raise ConfigurationError("typ must be a non-empty string")
        if require and (
            isinstance(require, str | bytes) or not all(type(r) is str for r in require)
        ):
            raise ConfigurationError("require must be a collection of claim names")
        return cls(
            _strings(issuer, "issuer"),
            _strings(audience, "audience"),
            float(leeway),
            normalize_typ(typ) if typ is not None else None,
            tuple(require) if require else (),
        )

    def replace(self, **changes: Any) -> ClaimRules:
        """A copy with some settings changed (same keywords as :meth:`create`)."""
        current: dict[str, Any] = {
            "issuer": self._issuers,
            "audience": self._audiences,
            "leeway": self._leeway,
            "typ": self._typ,
            "require": self._require,
        }
        unknown = changes.keys() - current.keys()
        if unknown:
            raise ConfigurationError(f"unknown claim rule settings: {sorted(unknown)}")
        current.update(changes)
        return ClaimRules.create(**current)

    @property
    def issuers(self) -> frozenset[str] | None:
        """Accepted issuers, or None when ``iss`` is not checked."""
        return self._issuers

    @property
    def audiences(self) -> frozenset[str] | None:
        """Accepted audiences; None means a token with any ``aud`` is refused."""
        return self._audiences

    @property
    def leeway(self) -> float:
        """Seconds of clock skew allowed."""
        return self._leeway

    @property
    def typ(self) -> str | None:
        """Expected header ``typ`` (normalised), or None."""
        return self._typ

    @property
    def require(self) -> tuple[str, ...]:
        """Claims that must be present and non-null."""
        return self._require

    def __repr__(self) -> str:
        return (
            f"ClaimRules(issuers={self._issuers!r}, audiences={self._audiences!r}, "
            f"leeway={self._leeway!r}, typ={self._typ!r}, require={self._require!r})"
        )

    def check_typ(self, header: Mapping[str, Any]) -> None:
        """Refuse a header whose ``typ`` is not the expected one (RFC 8725 sec. 3.11)."""
        expected = self._typ
        if expected is not None:
            typ = header.get("typ")
            # The exact normalised spelling first; any other is normalised, then compared.
            if typ != expected and (type(typ) is not str or normalize_typ(typ) != expected):
                raise InvalidTypeError("token typ is not the expected type")

    def check(self, claims: Mapping[str, Any], header: Mapping[str, Any], *, now: float) -> None:
        """Raise the first problem found with ``claims`` at time ``now``.

        This runs on every verification, so the checks are written out rather than
        looped over; each is the rule stated in the module docstring.
        """
        if self._typ is not None:
            self.check_typ(header)
        get = claims.get
        # The bounds are computed on ``now`` (a float) and compared with the claim, so a
        # huge integer claim compares exactly instead of overflowing a float conversion.
        earliest = now - self._leeway
        latest = now + self._leeway
        exp = get("exp", _MISSING)
        if exp is not _MISSING:
            if type(exp) is not int and not _is_finite_float(exp):
                raise _time_type("exp")
            if not earliest < exp:
                raise ExpiredTokenError("token has expired", claim="exp", reason="expired")
        nbf = get("nbf", _MISSING)
        if nbf is not _MISSING:
            if type(nbf) is not int and not _is_finite_float(nbf):
                raise _time_type("nbf")
            if latest < nbf:
                raise ImmatureTokenError("token is not valid yet", claim="nbf", reason="future")
        iat = get("iat", _MISSING)
        if iat is not _MISSING:
            if type(iat) is not int and not _is_finite_float(iat):
                raise _time_type("iat")
            if iat > latest:
                raise ImmatureTokenError(
                    "token was issued in the future", claim="iat", reason="future"
                )
        iss = get("iss", "")
        if (
            type(iss) is not str
            or type(get("sub", "")) is not str
            or type(get("jti", "")) is not str
        ):
            name = next(n for n in ("iss", "sub", "jti") if type(get(n, "")) is not str)
            raise ClaimError(f"claim {name!r} must be a string", claim=name, reason="type")
        if self._issuers is not None:
            if "iss" not in claims:
                raise MissingClaimError("token has no issuer", claim="iss", reason="missing")
            if iss not in self._issuers:
                raise ClaimError("token issuer is not accepted", claim="iss", reason="mismatch")
        aud = get("aud", _MISSING)
        if type(aud) is not str or self._audiences is None or aud not in self._audiences:
            self._check_audience(aud)
        if None in map(get, self._require):  # One C-level pass; the name is found after.
            name = next(n for n in self._require if get(n) is None)
            raise MissingClaimError(f"claim {name!r} is required", claim=name, reason="missing")

    def _check_audience(self, aud: Any) -> None:
        # RFC 7519 sec. 4.1.3: a token with an audience the recipient does not identify
        # itself with MUST be rejected, so an unexpected aud is refused as well.
        if aud is _MISSING:
            if self._audiences is not None:
                raise MissingClaimError("token has no audience", claim="aud", reason="missing")
            return
        if type(aud) is str:
            values: list[Any] = [aud]
        elif type(aud) is list and all(type(a) is str for a in aud):
            values = aud
        else:
            raise ClaimError("claim 'aud' must be a string or strings", claim="aud", reason="type")
        if self._audiences is None:
            raise ClaimError(
                "token has an audience but none is expected", claim="aud", reason="unexpected"
            )
        if self._audiences.isdisjoint(values):
            raise ClaimError("token audience is not accepted", claim="aud", reason="mismatch")
