"""tokenward.service: the token lifecycle over a session store (async, clock-injected)."""

from __future__ import annotations

from tokenward.service._clock import Clock, SystemClock
from tokenward.service._deny import DenyList
from tokenward.service._errors import (
    GrantError,
    RefreshReuseError,
    SessionExpiredError,
    SessionRevokedError,
    SessionRevokedTokenError,
    UnknownSessionError,
    WrongTokenTypeError,
)
from tokenward.service._keyring import KeyRing
from tokenward.service._policy import TokenPolicy
from tokenward.service._service import AccessClaims, Client, TokenPair, TokenService

__all__ = [
    "AccessClaims",
    "Client",
    "Clock",
    "DenyList",
    "GrantError",
    "KeyRing",
    "RefreshReuseError",
    "SessionExpiredError",
    "SessionRevokedError",
    "SessionRevokedTokenError",
    "SystemClock",
    "TokenPair",
    "TokenPolicy",
    "TokenService",
    "UnknownSessionError",
    "WrongTokenTypeError",
]
