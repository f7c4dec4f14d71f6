"""Token policy: lifetimes, audience, algorithm and the extra-claims hook, frozen.

Invalid combinations fail at construction with a message naming the setting, so a
misconfigured server refuses to start instead of minting odd tokens. Derive variants
with :func:`dataclasses.replace`, which validates again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tokenward.errors import ConfigurationError
from tokenward.jose import ALGORITHMS

__all__ = ["RESERVED_CLAIMS", "ClaimsHook", "TokenPolicy"]

ClaimsHook = Callable[[str, frozenset[str]], Mapping[str, Any]]
"""``hook(subject, scopes) -> extra access-token claims``."""

RESERVED_CLAIMS = frozenset(
    {
        "iss", "sub", "aud", "exp", "nbf", "iat", "jti", "sid", "client_id", "scope",
        "token_type", "gen", "session_exp", "ext",
    }
)  # fmt: skip
"""Claims the service sets itself; the extra-claims hook may not override them."""

_MINUTE = 60.0
_DAY = 86400.0


@dataclass(frozen=True, slots=True)
class TokenPolicy:
    """How the token service issues and checks tokens.

    >>> policy = TokenPolicy(issuer="https://auth.example", audience="api")
    >>> policy.access_lifetime, policy.refresh_lifetime
    (900.0, 1209600.0)

    * ``access_lifetime`` (15 min): access tokens; keep it short, they cannot be recalled
      from verifiers that miss the revocation feed.
    * ``refresh_lifetime`` (14 days): each refresh token; never past the session's end.
    * ``idle_timeout`` (14 days): a session unused this long ends; every refresh slides it.
    * ``absolute_lifetime`` (30 days): a session ends this long after login, however busy.
    * ``reuse_grace`` (10 s): the previous refresh token may be presented again for this
      long and gets the same successor (racing tabs and retries), never a new one.
    * ``leeway`` (0 s): clock skew allowed when verifying times.
    """

    issuer: str
    audience: str
    access_lifetime: float = 15 * _MINUTE
    refresh_lifetime: float = 14 * _DAY
    idle_timeout: float = 14 * _DAY
    absolute_lifetime: float = 30 * _DAY
    reuse_grace: float = 10.0
    leeway: float = 0.0
    algorithm: str = "ES256"
    claims_hook: ClaimsHook | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.issuer, str) or not self.issuer:
            raise ConfigurationError("issuer must be a non-empty string")
        if not isinstance(self.audience, str) or not self.audience:
            raise ConfigurationError("audience must be a non-empty string")
        for name in ("access_lifetime", "refresh_lifetime", "idle_timeout", "absolute_lifetime"):
            value = getattr(self, name)
            if type(value) not in (int, float) or not value > 0:
                raise ConfigurationError(f"{name} must be a positive number of seconds")
            object.__setattr__(self, name, float(value))
        if not self.access_lifetime < self.refresh_lifetime:
            raise ConfigurationError("access_lifetime must be shorter than refresh_lifetime")
        if self.idle_timeout > self.absolute_lifetime:
            raise ConfigurationError("idle_timeout must not exceed absolute_lifetime")
        if self.access_lifetime > self.absolute_lifetime:
            raise ConfigurationError("access_lifetime must not exceed absolute_lifetime")
        grace = self.reuse_grace
        if type(grace) not in (int, float) or not 0 <= grace <= 60:
            raise ConfigurationError("reuse_grace must be between 0 and 60 seconds")
        if not grace < self.access_lifetime:
            raise ConfigurationError("reuse_grace must be shorter than access_lifetime")
        if type(self.leeway) not in (int, float) or not 0 <= self.leeway <= 300:
            raise ConfigurationError("leeway must be between 0 and 300 seconds")
        if self.algorithm not in ALGORITHMS:
            raise ConfigurationError(f"algorithm {self.algorithm!r} is not supported")
        if self.claims_hook is not None and not callable(self.claims_hook):
            raise ConfigurationError("claims_hook must be callable")
        object.__setattr__(self, "reuse_grace", float(grace))
        object.__setattr__(self, "leeway", float(self.leeway))

    @property
    def refresh_audience(self) -> str:
        """The audience of refresh tokens: the issuer itself, never a resource server."""
        return self.issuer
