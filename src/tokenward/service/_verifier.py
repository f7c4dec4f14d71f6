"""The resource-server verifier: access tokens checked with no per-request I/O.

:class:`Verifier` checks an RFC 9068 access token (signature, ``typ: at+jwt``, ``iss``,
``aud``, times with leeway, ``token_type``, required scopes) against keys from a
:class:`~tokenward.service.KeySource`, and against a :class:`DenyList` of revoked
sessions and users that a :class:`~tokenward.service.RevocationFollower` keeps current.

A verified-token cache makes repeated tokens cheap: a client sends the same access token
with every request until it expires, so the second and later verifications of a token
are one dict lookup (keyed by the exact token string), one comparison with ``exp``, and
the deny-list check, instead of a signature verification. Revocation therefore still
applies to cached tokens at once. The cache is bounded (``cache_size`` entries; expired
entries go first, then the oldest that has not been used since it was last passed
over: a "second chance", so a flood of tokens each seen once cannot push out the tokens
clients keep sending), drops an entry when it is found expired, and is cleared whenever
the key source's set changes, so a key taken out of the set stops being accepted
immediately, cached or not.

Errors::

    InvalidTokenError                       (401 at the HTTP layer)
    ├── ... every codec error (tokenward.errors), WrongTokenTypeError, SessionRevokedTokenError
    └── RevocationFeedUnavailableError      the "refuse" policy is in force
    TokenwardError
    └── InsufficientScopeError              a valid token without a required scope (403)
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, NoReturn

from tokenward._frozen import unfrozen_twin
from tokenward.errors import (
    ConfigurationError,
    ExpiredTokenError,
    InvalidTokenError,
    InvalidTypeError,
    KeyNotFoundError,
    MalformedTokenError,
    MissingClaimError,
    TokenwardError,
)
from tokenward.jose import ClaimRules, KeySet, jwt
from tokenward.service._clock import Clock, SystemClock
from tokenward.service._deny import DenyList
from tokenward.service._errors import SessionRevokedTokenError, WrongTokenTypeError
from tokenward.service._follower import RevocationFollower
from tokenward.service._keysources import KeySource, StaticKeys

__all__ = [
    "AccessClaims",
    "InsufficientScopeError",
    "RevocationFeedUnavailableError",
    "Verifier",
    "VerifierStats",
]

ACCESS_TYP = "at+jwt"
_REQUIRED = ("exp", "iat", "sub", "sid", "jti")
#: How often (clock seconds) a cache insertion also sweeps out expired entries.
_SWEEP_INTERVAL = 60.0

_SIZED = (tuple, list, set, frozenset)

_log = logging.getLogger("tokenward.verifier")


class InsufficientScopeError(TokenwardError):
    """The token is valid but lacks a required scope (RFC 6750 sec. 3.1: 403).

    ``required`` is what the route asked for, ``missing`` what the token lacks.
    Deliberately not an :class:`InvalidTokenError`: the token must not be discarded.
    """

    code = "insufficient_scope"

    def __init__(self, message: str, *, required: frozenset[str], missing: frozenset[str]):
        super().__init__(message)
        self.required = required
        self.missing = missing


class RevocationFeedUnavailableError(InvalidTokenError):
    """Refused by the ``"refuse"`` policy: the revocation feed is down for too long."""

    code = "revocation_unavailable"


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """A verified access token's claims, typed; ``claims`` holds all of them as decoded."""

    sub: str
    sid: str
    scopes: frozenset[str]
    client_id: str | None
    jti: str
    iat: int
    exp: int
    claims: Mapping[str, Any] = field(repr=False)


# Built on every cache miss: see tokenward._frozen.
_AccessClaimsTwin = unfrozen_twin(AccessClaims)


def _access_claims(raw: dict[str, Any], scope: str) -> AccessClaims:
    sid = raw["sid"]
    client_id = raw.get("client_id")
    iat = raw["iat"]
    exp = raw["exp"]
    claims: AccessClaims = _AccessClaimsTwin(
        raw["sub"],
        sid if type(sid) is str else str(sid),
        frozenset(scope.split()),
        client_id if type(client_id) is str else None,
        raw["jti"],
        iat if type(iat) is int else int(iat),
        exp if type(exp) is int else int(exp),
        raw,
    )
    claims.__class__ = AccessClaims  # See tokenward._frozen.
    return claims


@dataclass(slots=True)
class VerifierStats:
    """Counters of a :class:`Verifier` (for metrics, and for tests that count work)."""

    signature_verifications: int = 0
    """Full verifications attempted (each at most one signature check)."""
    cache_hits: int = 0
    """Tokens answered from the verified-token cache (accepted or refused)."""
    cache_evictions: int = 0
    """Live entries dropped because the cache was full."""
    key_refreshes: int = 0
    """Unknown-``kid`` refreshes asked of the key source by :meth:`Verifier.verify_async`."""
    refused_unavailable: int = 0
    """Tokens refused because the revocation feed was down too long (``"refuse"``)."""


def _key_set_algorithms(keys: KeySet) -> frozenset[str]:
    algorithms: set[str] = set()
    for key in keys:
        # A key bound to an alg is used with that alg only (RFC 8725 sec. 3.1).
        algorithms.update((key.alg,) if key.alg is not None else key.algorithms)
    return frozenset(algorithms)


class Verifier:
    """Verify access tokens with no per-request I/O; see the module docstring.

    >>> from tokenward.jose import Key
    >>> key = Key.generate("ES256", kid="k1")
    >>> verifier = Verifier(KeySet([key.public_key()]), issuer="https://auth", audience="api")
    >>> # claims = verifier.verify(token, scopes=["read"])           # sync, no I/O
    >>> # claims = await verifier.verify_async(token, scopes="read") # may refetch keys

    ``keys`` is a :class:`KeySource` (:class:`StaticKeys`, :class:`KeyRingKeys`,
    :class:`RemoteJWKS`) or a plain :class:`KeySet`. ``algorithms`` defaults to those of
    the keys in the set. ``deny`` is the deny list to consult (the ``follower``'s when one
    is given). ``cache_size=0`` turns the verified-token cache off.

    Thread-safe: the cache lookup is one dict read, and insertions take a lock. The
    counters in :attr:`stats` may undercount under free threading.
    """

    def __init__(
        self,
        keys: KeySource | KeySet,
        *,
        issuer: str | Iterable[str],
        audience: str | Iterable[str],
        algorithms: Iterable[str] | None = None,
        leeway: float = 0,
        clock: Clock | None = None,
        deny: DenyList | None = None,
        follower: RevocationFollower | None = None,
        cache_size: int = 10_000,
    ) -> None:
        if isinstance(keys, KeySet):
            keys = StaticKeys(keys)
        if not isinstance(keys, KeySource):
            raise ConfigurationError("keys must be a KeySource or a KeySet")
        if not issuer or not audience:
            raise ConfigurationError("a verifier needs an issuer and an audience")
        if type(cache_size) is not int or cache_size < 0:
            raise ConfigurationError("cache_size must be an int >= 0")
        if follower is not None:
            if deny is not None and deny is not follower.deny:
                raise ConfigurationError("deny must be the follower's deny list")
            deny = follower.deny
        self._keys: KeySource = keys
        self._rules = ClaimRules.create(
            issuer=issuer if isinstance(issuer, str) else tuple(issuer),
            audience=audience if isinstance(audience, str) else tuple(audience),
            leeway=leeway,
            typ=ACCESS_TYP,
            require=_REQUIRED,
        )
        self._leeway = self._rules.leeway
        self._fixed_algorithms = frozenset(algorithms) if algorithms is not None else None
        if self._fixed_algorithms is not None and not self._fixed_algorithms:
            raise ConfigurationError("algorithms must not be empty")
        self._algorithms: frozenset[str] = frozenset()
        self._usable = False  # keys and algorithms both non-empty (set by _switch_keys)
        self._clock: Clock = clock or SystemClock()
        self.deny: DenyList = deny if deny is not None else DenyList()
        # A token is accepted until exp + leeway: its session's entry must last as long.
        self.deny.keep_longer(self._leeway)
        self._follower = follower
        self._cache_size = cache_size
        self._cache: dict[str | bytes, tuple[AccessClaims, float]] = {}
        # Cached tokens used again since they were cached or last passed over by eviction.
        self._used: set[str | bytes] = set()
        self._cache_keys: KeySet | None = None
        self._lock = threading.Lock()
        self._next_sweep = -math.inf
        self._earliest = math.inf
        self._refusal_logged_for: float | None = None
        self.stats = VerifierStats()

    @property
    def keys(self) -> KeySource:
        """The key source."""
        return self._keys

    @property
    def follower(self) -> RevocationFollower | None:
        """The revocation follower consulted for the disconnect policy, if any."""
        return self._follower

    @property
    def cached_tokens(self) -> int:
        """How many verified tokens the cache holds."""
        return len(self._cache)

    def clear_cache(self) -> None:
        """Forget every verified token (the next use of each is verified in full)."""
        with self._lock:
            self._cache.clear()
            self._used.clear()

    # -- verification -----------------------------------------------------------------------

    def verify(self, token: str | bytes, *, scopes: str | Iterable[str] = ()) -> AccessClaims:
        """Verify ``token`` now, with no I/O; return its claims or raise.

        Raises an :class:`InvalidTokenError` (401) for a token that must not be accepted,
        and :class:`InsufficientScopeError` (403) when it lacks one of ``scopes``.
        """
        now = self._clock.now()
        follower = self._follower
        if follower is not None:
            refuse_after = follower.refuse_after
            if refuse_after is not None and now >= refuse_after:
                self._refuse(refuse_after)
        keys = self._keys.key_set
        if keys is not self._cache_keys:
            self._switch_keys(keys)
        try:
            entry = self._cache.get(token)
        except TypeError:
            raise MalformedTokenError("a token is a string") from None
        if entry is None:
            claims = self._verify_fully(token, keys, now)
        else:
            self.stats.cache_hits += 1
            claims, until = entry
            if not now < until:
                self._cache.pop(token, None)
                self._used.discard(token)
                raise ExpiredTokenError("token has expired", claim="exp", reason="expired")
            if self.deny.denies(claims.claims):
                raise SessionRevokedTokenError("the token's session has been revoked")
            self._used.add(token)
        if scopes:
            # A string is an OAuth scope list ("read write"), never iterated letter by letter.
            required = scopes.split() if isinstance(scopes, str) else scopes
            if not isinstance(required, _SIZED):
                required = tuple(required)  # A one-shot iterable is read once only.
            if not claims.scopes.issuperset(required):
                self._refuse_scopes(claims, required)
        return claims

    async def verify_async(
        self, token: str | bytes, *, scopes: str | Iterable[str] = ()
    ) -> AccessClaims:
        """As :meth:`verify`; on a cache miss, the key source may refetch first.

        A stale remote JWKS is refetched, and an unknown ``kid`` makes the source refetch
        (rate-limited) and the token is tried once more.
        """
        try:
            cached = token in self._cache
        except TypeError:
            raise MalformedTokenError("a token is a string") from None
        if not cached:
            await self._keys.ensure_fresh()
            try:
                return self.verify(token, scopes=scopes)
            except KeyNotFoundError:
                self.stats.key_refreshes += 1
                if not await self._keys.refresh_for_unknown_kid():
                    raise
        return self.verify(token, scopes=scopes)

    # -- internals --------------------------------------------------------------------------

    def _refuse(self, refuse_after: float) -> NoReturn:
        self.stats.refused_unavailable += 1
        if self._refusal_logged_for != refuse_after:
            self._refusal_logged_for = refuse_after
            _log.error("refusing every token: the revocation feed is unavailable ('refuse')")
        raise RevocationFeedUnavailableError("revocation state is unavailable")

    def _switch_keys(self, keys: KeySet) -> None:
        # A new key set may lack a key that signed cached tokens: verify them again.
        with self._lock:
            self._cache.clear()
            self._used.clear()
            self._earliest = math.inf
            self._cache_keys = keys
            self._algorithms = (
                self._fixed_algorithms
                if self._fixed_algorithms is not None
                else _key_set_algorithms(keys)
            )
            self._usable = bool(len(keys)) and bool(self._algorithms)

    def _verify_fully(self, token: str | bytes, keys: KeySet, now: float) -> AccessClaims:
        if not self._usable:
            raise KeyNotFoundError("no verification keys are loaded")
        self.stats.signature_verifications += 1
        try:
            _, raw = jwt.decode_with_header(
                token, keys, algorithms=self._algorithms, rules=self._rules, now=now
            )
        except InvalidTypeError:
            # Signed by a trusted key but not typed at+jwt: a refresh token, or another
            # kind (RFC 8725 sec. 3.11: explicit typing keeps token kinds apart).
            raise WrongTokenTypeError("this is not an access token") from None
        if raw.get("token_type") != "access":
            raise WrongTokenTypeError("this is not an access token")
        scope = raw.get("scope", "")
        if type(scope) is not str:
            raise MissingClaimError("claim 'scope' must be a string", claim="scope", reason="type")
        claims = _access_claims(raw, scope)
        # Cached before the deny check: a revoked token presented again is refused at
        # the cost of a lookup, not of another signature verification.
        if self._cache_size:
            self._remember(token, claims, raw["exp"] + self._leeway, now, keys)
        if self.deny.denies(raw):
            raise SessionRevokedTokenError("the token's session has been revoked")
        return claims

    def _remember(
        self, token: str | bytes, claims: AccessClaims, until: float, now: float, keys: KeySet
    ) -> None:
        with self._lock:
            if keys is not self._cache_keys:
                return  # The key set changed during verification: do not cache.
            cache = self._cache
            size = self._cache_size
            if len(cache) >= size:
                # Expired entries go first (a sweep is only worth its O(n) scan when one
                # has expired), then the oldest. Freeing a sixteenth at once keeps a flood
                # of fresh tokens at amortised O(1) per insertion.
                if now >= self._earliest or now >= self._next_sweep:
                    self._sweep(now)
                excess = len(cache) - (size - max(1, size // 16))
                if excess > 0:
                    self._evict(excess)
            elif now >= self._next_sweep:
                self._sweep(now)
            cache[token] = (claims, until)
            self._earliest = min(self._earliest, until)

    def _evict(self, excess: int) -> None:
        # Oldest first; a token used since it was cached (or last passed over) is moved
        # to the back once instead, without its mark, so at most two passes are needed.
        cache, used = self._cache, self._used
        evicted = 0
        while evicted < excess:
            for old in list(islice(cache, excess - evicted)):
                if old in used:
                    used.discard(old)
                    cache[old] = cache.pop(old)
                else:
                    del cache[old]
                    evicted += 1
        self.stats.cache_evictions += evicted

    def _sweep(self, now: float) -> None:
        # Entries are also dropped when found expired; this catches tokens never seen again.
        cache = self._cache
        earliest = math.inf
        for token, (_, until) in list(cache.items()):
            if until <= now:
                del cache[token]
                self._used.discard(token)
            elif until < earliest:
                earliest = until
        self._used.intersection_update(cache)  # Marks left by a hit racing an eviction.
        self._earliest = earliest
        self._next_sweep = now + _SWEEP_INTERVAL

    def _refuse_scopes(self, claims: AccessClaims, required: Iterable[str]) -> NoReturn:
        wanted = frozenset(required)
        missing = wanted - claims.scopes
        raise InsufficientScopeError(
            f"the token lacks the scopes {sorted(missing)}", required=wanted, missing=missing
        )
