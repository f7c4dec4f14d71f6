"""tokenward.service: the token lifecycle over a session store (async, clock-injected)."""

from __future__ import annotations

from tokenward.service._clock import Clock, SystemClock
from tokenward.service._deny import DenyList
from tokenward.service._errors import (
    AuthenticationError,
    ClientMismatchError,
    GrantError,
    InvalidCredentialsError,
    InvalidScopeError,
    LoginThrottledError,
    RefreshReuseError,
    SessionExpiredError,
    SessionRevokedError,
    SessionRevokedTokenError,
    UnknownSessionError,
    WrongTokenTypeError,
)
from tokenward.service._follower import RevocationFollower
from tokenward.service._keyring import SIGNING_LAG, KeyRing
from tokenward.service._keysources import (
    JWKSFetchError,
    KeyRingKeys,
    KeySource,
    RemoteJWKS,
    StaticKeys,
)
from tokenward.service._passwords import Argon2Parameters, PasswordHasher
from tokenward.service._policy import TokenPolicy
from tokenward.service._service import AccessClaims, Client, TokenPair, TokenService
from tokenward.service._users import ThrottlePolicy, UserService
from tokenward.service._verifier import (
    InsufficientScopeError,
    RevocationFeedUnavailableError,
    Verifier,
    VerifierStats,
)

__all__ = [
    "SIGNING_LAG",
    "AccessClaims",
    "Argon2Parameters",
    "AuthenticationError",
    "Client",
    "ClientMismatchError",
    "Clock",
    "DenyList",
    "GrantError",
    "InsufficientScopeError",
    "InvalidCredentialsError",
    "InvalidScopeError",
    "JWKSFetchError",
    "KeyRing",
    "KeyRingKeys",
    "KeySource",
    "LoginThrottledError",
    "PasswordHasher",
    "RefreshReuseError",
    "RemoteJWKS",
    "RevocationFeedUnavailableError",
    "RevocationFollower",
    "SessionExpiredError",
    "SessionRevokedError",
    "SessionRevokedTokenError",
    "StaticKeys",
    "SystemClock",
    "ThrottlePolicy",
    "TokenPair",
    "TokenPolicy",
    "TokenService",
    "UnknownSessionError",
    "UserService",
    "Verifier",
    "VerifierStats",
    "WrongTokenTypeError",
]
