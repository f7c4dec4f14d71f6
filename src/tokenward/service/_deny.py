"""The in-memory deny list a verifier consults: one dict lookup per request, no I/O.

It holds revoked session ids and per-user "not before" times, fed by revocation events
(from this process, or from the store's feed). Each entry is kept only until
``expires_at``: after that, every access token it could cover has expired anyway. A
verifier that allows clock skew accepts a token until its ``exp`` plus that leeway, so
it asks the deny list to keep entries that much longer (:meth:`DenyList.keep_longer`).

A SESSION event denies every access token carrying its ``sid``, whenever issued.

User and global revocations compare the token's whole-second ``iat`` with the whole
second of the revocation: tokens issued in an earlier second are denied; a token issued
in the same second as the revocation is not (it cannot be told apart from a token issued
just after it, such as the one a password change hands the user who made it).

To close that gap for the sessions it ends, a user revocation reaches a verifier as
several events: the store records one SESSION event for each session it revoked, then
the USER event (:meth:`~tokenward.stores.base.SessionStore.revoke_user`). Every revoked
session is denied exactly, by ``sid``, including its tokens issued in the same second
as the revocation; the USER event additionally denies that user's tokens issued in
earlier seconds, whatever their session (or none). Sessions created after the
revocation are unaffected. A global revocation stays one ALL event (there may be too
many sessions to list), with the whole-second cutoff only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from tokenward.stores.base import RevocationEvent, RevocationKind

__all__ = ["DenyList"]


class DenyList:
    """Revoked sessions and users, each until its last covered token has expired."""

    __slots__ = ("_all", "_grace", "_last_seq", "_sessions", "_users")

    def __init__(self) -> None:
        self._sessions: dict[str, float] = {}
        self._users: dict[str, tuple[int, float]] = {}
        self._all: tuple[int, float] | None = None
        self._last_seq = 0
        self._grace = 0.0

    def keep_longer(self, seconds: float) -> None:
        """Keep every entry at least ``seconds`` past its ``expires_at``.

        A :class:`~tokenward.service.Verifier` calls this with its leeway: it accepts a
        token until ``exp`` plus the leeway, and a revoked session's token must stay
        denied for as long. The longest request of every caller wins.
        """
        self._grace = max(self._grace, float(seconds))

    @property
    def last_seq(self) -> int:
        """The highest store sequence number applied (0 if none)."""
        return self._last_seq

    def __len__(self) -> int:
        return len(self._sessions) + len(self._users) + (self._all is not None)

    def apply(self, event: RevocationEvent) -> None:
        """Record one revocation event (idempotent)."""
        self._last_seq = max(self._last_seq, event.seq)
        if event.kind is RevocationKind.SESSION and event.sid is not None:
            self._sessions[event.sid] = max(event.expires_at, self._sessions.get(event.sid, 0.0))
        elif event.kind is RevocationKind.USER and event.sub is not None:
            cutoff = math.floor(event.at)
            previous = self._users.get(event.sub)
            if previous is None or previous[0] <= cutoff:
                self._users[event.sub] = (cutoff, event.expires_at)
        elif event.kind is RevocationKind.ALL:
            cutoff = math.floor(event.at)
            if self._all is None or self._all[0] <= cutoff:
                self._all = (cutoff, event.expires_at)

    def apply_all(self, events: Iterable[RevocationEvent]) -> None:
        """Record several events."""
        for event in events:
            self.apply(event)

    def denies(self, claims: Mapping[str, Any]) -> bool:
        """True when the token's session, user or issue time is revoked."""
        if self._sessions and claims.get("sid") in self._sessions:
            return True
        if self._users:
            entry = self._users.get(claims.get("sub", ""))
            if entry is not None and claims.get("iat", 0) < entry[0]:
                return True
        return self._all is not None and claims.get("iat", 0) < self._all[0]

    def prune(self, now: float) -> int:
        """Forget entries whose covered tokens have all expired; return how many."""
        now -= self._grace  # An entry lasts until expires_at + grace.
        stale_sessions = [sid for sid, until in self._sessions.items() if until <= now]
        for sid in stale_sessions:
            del self._sessions[sid]
        stale_users = [sub for sub, (_, until) in self._users.items() if until <= now]
        for sub in stale_users:
            del self._users[sub]
        dropped = len(stale_sessions) + len(stale_users)
        if self._all is not None and self._all[1] <= now:
            self._all = None
            dropped += 1
        return dropped
