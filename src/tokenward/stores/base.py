"""The session store contract: records, outcomes, and the ``SessionStore`` protocol.

Every backend (memory, SQLite, Redis, PostgreSQL) implements :class:`SessionStore` and
passes the one contract suite in ``tests/stores``. The service layer knows stores only
through this protocol.

What a store keeps, and what it never keeps:

* per session: ``sid``, ``sub``, times, client metadata, the refresh ``generation``, the
  SHA-256 of the current and of the previous refresh token's ``jti``, the time of the
  last rotation, and the *sealed successor*: the pair handed out by the last rotation,
  encrypted under a key derived from the previous refresh token's ``jti``. The store
  never holds a token, nor anything that opens the sealed successor: only the holder
  of the previous refresh token can (see ``tokenward.service``).
* revocation events, for the feed that verifiers follow, each kept until
  ``expires_at`` (the end of the longest access token it could cover);
* signing keys for the key ring.

Times are Unix seconds (floats) passed in by the caller; stores never read a clock,
so tests control time completely.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from tokenward.errors import TokenwardError

__all__ = [
    "KeyRecord",
    "KeyState",
    "NewSession",
    "RevocationEvent",
    "RevocationFeed",
    "RevocationKind",
    "RotateResult",
    "RotateStatus",
    "Rotation",
    "SessionRecord",
    "SessionStore",
    "StoreError",
    "StoreUnavailableError",
    "UserExistsError",
    "UserRecord",
    "UserStore",
]


class StoreError(TokenwardError):
    """A store failed in a way that is not the caller's fault."""

    code = "store_error"


class StoreUnavailableError(StoreError):
    """The store cannot be reached or timed out; nothing was changed by the failed call.

    Callers may retry later; the HTTP layer answers 503 with ``Retry-After``. (On Redis
    Cluster, ``revoke_user`` and ``revoke_all`` may have revoked the sessions on the
    nodes that answered; calling again completes them. See
    :mod:`tokenward.stores._redis_cluster`.)
    """

    code = "store_unavailable"


class UserExistsError(StoreError):
    """A user with that name exists already."""

    code = "user_exists"


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A user account. ``sub`` is the stable subject put in tokens; ``username`` may change.

    ``password_hash`` is an argon2id PHC string (never a password). ``scopes`` are the
    scopes the user may be granted; ``admin`` allows the admin endpoints.
    """

    sub: str
    username: str
    password_hash: str
    created_at: float
    updated_at: float
    scopes: tuple[str, ...] = ()
    admin: bool = False
    disabled: bool = False


@dataclass(frozen=True, slots=True)
class NewSession:
    """Everything needed to create a session (one login on one device)."""

    sid: str
    sub: str
    created_at: float
    idle_expires_at: float
    absolute_expires_at: float
    refresh_hash: bytes
    scope: str = ""
    client_id: str | None = None
    user_agent: str | None = None
    ip: str | None = None


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A session as stored; the refresh hashes and sealed successor are not exposed."""

    sid: str
    sub: str
    created_at: float
    last_used_at: float
    idle_expires_at: float
    absolute_expires_at: float
    generation: int
    scope: str = ""
    client_id: str | None = None
    user_agent: str | None = None
    ip: str | None = None
    revoked_at: float | None = None
    revoked_reason: str | None = None

    def active(self, now: float) -> bool:
        """True when the session is neither revoked nor expired at ``now``."""
        return (
            self.revoked_at is None
            and now < self.idle_expires_at
            and now < self.absolute_expires_at
        )


@dataclass(frozen=True, slots=True)
class Rotation:
    """One refresh attempt, evaluated atomically by :meth:`SessionStore.rotate`.

    ``generation`` and ``presented_hash`` describe the presented refresh token;
    ``successor_*`` the pair this caller would hand out if it wins the rotation.
    ``event_expires_at`` is when a revocation event caused by reuse may be forgotten.
    """

    sid: str
    generation: int
    presented_hash: bytes
    successor_hash: bytes
    successor_sealed: bytes
    now: float
    idle_expires_at: float
    grace: float
    event_expires_at: float


class RotateStatus(enum.Enum):
    """What :meth:`SessionStore.rotate` did."""

    ROTATED = "rotated"
    """The presented token was current: the generation advanced to the successor."""
    REPLAYED = "replayed"
    """The presented token is the one just rotated, within the grace window: the stored
    sealed successor is returned and nothing changes."""
    REUSED = "reused"
    """An older generation, or the previous one after the grace window: the session was
    revoked (reason ``"reuse"``) and a revocation event recorded, in the same operation."""
    UNKNOWN = "unknown"
    """No such session, or a token this session never issued."""
    EXPIRED = "expired"
    """The session passed its idle or absolute expiry."""
    REVOKED = "revoked"
    """The session was revoked earlier."""


@dataclass(frozen=True, slots=True)
class RotateResult:
    """Outcome of a rotation; ``sealed`` is set for ROTATED (the caller's own) and REPLAYED."""

    status: RotateStatus
    session: SessionRecord | None = None
    sealed: bytes | None = None


class RevocationKind(enum.Enum):
    """What a revocation event covers."""

    SESSION = "session"
    """One session: deny access tokens whose ``sid`` matches."""
    USER = "user"
    """A user: deny that ``sub``'s access tokens issued before ``at``. Recorded by
    :meth:`SessionStore.revoke_user` after one SESSION event per session it revoked."""
    ALL = "all"
    """Everyone: deny every access token issued before ``at``."""


@dataclass(frozen=True, slots=True)
class RevocationEvent:
    """A revocation for verifiers; ``seq`` orders events within one store."""

    seq: int
    kind: RevocationKind
    at: float
    expires_at: float
    sid: str | None = None
    sub: str | None = None
    reason: str = ""


class KeyState(enum.Enum):
    """Life of a signing key (DESIGN.md, "Keys")."""

    NEXT = "next"
    """Published in JWKS, not yet signing."""
    CURRENT = "current"
    """Signing (exactly one key at a time)."""
    RETIRED = "retired"
    """Published until every token it signed has expired, then removed."""


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A signing key as stored: its private JWK, possibly encrypted at rest."""

    kid: str
    alg: str
    state: KeyState
    material: bytes
    created_at: float
    retire_after: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class SessionStore(Protocol):
    """The contract every backend implements. All methods may raise
    :class:`StoreUnavailableError`; then nothing was changed."""

    async def create_session(self, session: NewSession) -> None:
        """Store a new session at generation 0 with ``refresh_hash`` as current.

        Raises :class:`StoreError` if ``sid`` exists already.
        """
        ...

    async def rotate(self, rotation: Rotation) -> RotateResult:
        """Evaluate one refresh attempt atomically (a single store round trip).

        In order: no session -> UNKNOWN; revoked -> REVOKED; ``now`` at or past the
        idle or absolute expiry -> EXPIRED; presented generation equals the stored one
        and the hash matches the current hash -> ROTATED (generation + 1, previous hash
        := current, current := successor hash, sealed := successor_sealed, rotated_at
        := now, last_used_at := now, idle expiry := ``idle_expires_at``); presented
        generation is the previous one, the hash matches the previous hash, and ``now <
        rotated_at + grace`` -> REPLAYED with the stored sealed successor; any other
        presented generation below the stored one -> REUSED (revoke the session with
        reason "reuse" and record a SESSION revocation event expiring at
        ``event_expires_at``); anything else -> UNKNOWN.
        """
        ...

    async def get_session(self, sid: str) -> SessionRecord | None:
        """Return the session, active or not, or None."""
        ...

    async def list_sessions(self, sub: str, now: float) -> Sequence[SessionRecord]:
        """Return ``sub``'s active sessions at ``now``, oldest first."""
        ...

    async def revoke_session(
        self, sid: str, *, now: float, reason: str, event_expires_at: float
    ) -> bool:
        """Revoke one session and record a SESSION event; False if unknown or already revoked."""
        ...

    async def revoke_user(
        self, sub: str, *, now: float, reason: str, event_expires_at: float
    ) -> int:
        """Revoke every active session of ``sub`` and return how many were revoked.

        In the same atomic operation (one round trip; Redis Cluster takes it in steps,
        see :mod:`tokenward.stores._redis_cluster`), record one SESSION event per
        revoked session (its ``sid`` and ``sub``, ``reason``, ``at`` = ``now``, expiring
        at ``event_expires_at``), oldest session first, and then one USER event. The
        SESSION events let verifiers deny exactly the revoked sessions' access tokens,
        including any issued in the very second of the revocation, which the USER
        event's whole-second cutoff does not cover.
        """
        ...

    async def revoke_all(self, *, now: float, reason: str, event_expires_at: float) -> int:
        """Revoke every active session; record one ALL event; return the count."""
        ...

    async def revocations_since(self, seq: int, *, now: float) -> Sequence[RevocationEvent]:
        """Unexpired events with ``seq`` greater than the given one, in order.

        ``revocations_since(0, now=...)`` is the snapshot a late verifier starts from.
        """
        ...

    async def purge_expired(self, *, now: float, batch: int) -> int:
        """Delete up to ``batch`` expired sessions and up to ``batch`` expired events.

        A session is expired once ``now`` is past its idle or absolute expiry (revoked
        sessions are kept until then, so reuse of their tokens is still recognised).
        Returns how many rows were deleted; callers loop until it returns 0.
        """
        ...

    async def put_key(self, key: KeyRecord) -> None:
        """Insert or replace a signing key by ``kid``."""
        ...

    async def list_keys(self) -> Sequence[KeyRecord]:
        """All stored signing keys, oldest first."""
        ...

    async def delete_key(self, kid: str) -> bool:
        """Remove a signing key; False if it did not exist."""
        ...

    async def close(self) -> None:
        """Release connections. The store is unusable afterwards."""
        ...


@runtime_checkable
class UserStore(Protocol):
    """Accounts and login throttling, kept by the same backends as sessions."""

    async def create_user(self, user: UserRecord) -> None:
        """Store a new user; :class:`UserExistsError` if the username or sub is taken."""
        ...

    async def get_user(self, username: str) -> UserRecord | None:
        """The user with this username (exact, case-sensitive match), or None."""
        ...

    async def list_users(self) -> Sequence[UserRecord]:
        """All users, ordered by username."""
        ...

    async def update_user(self, user: UserRecord) -> bool:
        """Replace the stored user with the same ``sub``; False if there is none."""
        ...

    async def record_failure(self, key: str, *, now: float, window: float) -> int:
        """Count one failed login under ``key`` (an account or an address) and return the
        failures within the current window; the count starts again ``window`` seconds
        after the window's first failure. One atomic store operation.
        """
        ...

    async def failures(self, key: str, *, now: float) -> tuple[int, float]:
        """``(failures in the current window, when the window ends)``; ``(0, now)`` if none."""
        ...

    async def clear_failures(self, key: str) -> None:
        """Forget the failures under ``key`` (after a successful login)."""
        ...


@runtime_checkable
class RevocationFeed(Protocol):
    """Revocation events as they happen, for verifiers (DESIGN.md, "Revocation without
    per-request I/O")."""

    def events(self, since: int, *, now: float) -> AsyncIterator[RevocationEvent | None]:
        """Yield every unexpired event with ``seq > since``: first the snapshot
        (:meth:`SessionStore.revocations_since`), then live events as they are recorded,
        without gaps or duplicates across the switch. Subscribe before taking the
        snapshot, so nothing recorded in between is lost.

        Between the two, yield ``None`` once: the subscription is live and the snapshot
        delivered, so a deny list fed this far is current. A follower counts the feed as
        connected from that marker on, and never before it: a connection attempt that
        hangs must not pass for a quiet, working feed.

        Raises :class:`StoreUnavailableError` when the connection is lost; the caller
        reconnects with the last ``seq`` it applied.
        """
        ...
