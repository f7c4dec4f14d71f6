"""User accounts: creation, password login with throttling, password changes, disabling.

Login answers one error for a wrong password, an unknown user and a disabled account
(:class:`InvalidCredentialsError`), and spends the same argon2 time on each. Failures
are counted per account and per client address in the store; past the limit the answer
is :class:`LoginThrottledError` with the seconds until the window ends (the HTTP layer's
``Retry-After``).

Logins that run at the same time must not all pass the check before any has failed.
Per account the bound is exact across server processes: an attempt is counted as a
failure (one atomic store operation) before its password is checked, and a success
clears the account's count as it always did. Per address a success must not count, and
the store has no way to take a failure back, so each process counts its own attempts in
flight per address on top of the stored failures: exact in one process, and with N
processes up to N times the attempts left in the window can be checked at once.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import NoReturn

from tokenward.errors import ConfigurationError
from tokenward.service._errors import (
    InvalidCredentialsError,
    InvalidScopeError,
    LoginThrottledError,
)
from tokenward.service._passwords import PasswordHasher
from tokenward.service._service import Client, TokenPair, TokenService
from tokenward.stores.base import UserRecord, UserStore

__all__ = ["ThrottlePolicy", "UserService"]

_USERNAME = re.compile(r"[A-Za-z0-9._@+-]{1,64}")
_SCOPE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")  # RFC 6749 sec. 3.3 scope-token
_audit = logging.getLogger("tokenward.audit")


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    """Failed logins allowed per window, per account and per client address."""

    window: float = 900.0
    per_account: int = 5
    per_address: int = 50

    def __post_init__(self) -> None:
        if not self.window > 0 or self.per_account < 1 or self.per_address < 1:
            raise ConfigurationError("throttle window and limits must be positive")


def _superseded(current: UserRecord, password_hash: str) -> bool:
    """Whether a password checked against ``password_hash`` no longer admits ``current``."""
    return current.password_hash != password_hash or current.disabled


def _check_scopes(scopes: Sequence[str]) -> tuple[str, ...]:
    if isinstance(scopes, str) or not all(
        isinstance(s, str) and _SCOPE.fullmatch(s) for s in scopes
    ):
        raise ConfigurationError("scopes must be a list of RFC 6749 scope tokens")
    return tuple(dict.fromkeys(scopes))


class UserService:
    """Accounts over a :class:`UserStore`, issuing sessions through a :class:`TokenService`."""

    def __init__(
        self,
        store: UserStore,
        tokens: TokenService,
        *,
        hasher: PasswordHasher | None = None,
        throttle: ThrottlePolicy | None = None,
    ) -> None:
        self.store = store
        self.tokens = tokens
        self.hasher = hasher or PasswordHasher()
        self.throttle = throttle or ThrottlePolicy()
        # Logins of this process whose outcome is not yet counted, per address key.
        self._in_flight: Counter[str] = Counter()

    async def create_user(
        self, username: str, password: str, *, scopes: Sequence[str] = (), admin: bool = False
    ) -> UserRecord:
        """Create an account; the password is hashed with argon2id, never stored."""
        if not isinstance(username, str) or not _USERNAME.fullmatch(username):
            raise ConfigurationError("a username is 1-64 of letters, digits and . _ @ + -")
        now = self.tokens.clock.now()
        user = UserRecord(
            sub="u-" + secrets.token_urlsafe(12),
            username=username,
            password_hash=await asyncio.to_thread(self.hasher.hash, password),
            created_at=now,
            updated_at=now,
            scopes=_check_scopes(scopes),
            admin=admin,
        )
        await self.store.create_user(user)
        _audit.info("user_created", extra={"sub": user.sub, "admin": admin})
        return user

    async def get_user(self, username: str) -> UserRecord | None:
        """The account with this username, or None."""
        return await self.store.get_user(username)

    async def list_users(self) -> Sequence[UserRecord]:
        """Every account, by username."""
        return await self.store.list_users()

    async def _require(self, username: str) -> UserRecord:
        user = await self.store.get_user(username)
        if user is None:
            raise ConfigurationError(f"no user named {username!r}")
        return user

    async def authenticate(
        self, username: str, password: str, *, address: str | None
    ) -> UserRecord:
        """Check a password under the throttle; return the account or raise."""
        address_key = "addr:" + address if address else None
        if address_key is None:
            return await self._authenticate(username, password, None, 0)
        # Taken before the first await, so that attempts started together see each
        # other: this one's position among the address's attempts in flight.
        self._in_flight[address_key] += 1
        try:
            ticket = self._in_flight[address_key]
            return await self._authenticate(username, password, address_key, ticket)
        finally:
            self._in_flight[address_key] -= 1
            if not self._in_flight[address_key]:
                del self._in_flight[address_key]

    async def _authenticate(
        self, username: str, password: str, address_key: str | None, ticket: int
    ) -> UserRecord:
        now = self.tokens.clock.now()
        window = self.throttle.window
        if address_key is not None:
            # Every attempt in flight may yet fail: count it with the stored failures.
            # One whose failure is stored while this read runs is counted twice, so
            # racing attempts can be refused a little early, never let through. When
            # only attempts in flight are in the way, retrying in a second may succeed.
            count, ends = await self.store.failures(address_key, now=now)
            limit = self.throttle.per_address
            if count + ticket > limit:
                self._throttled("addr", ends if count >= limit else now, now)
        account_key = "acct:" + username
        # Counted before the check, so concurrent attempts on any process take distinct
        # counts from the store's atomic increment; a success clears it below.
        if await self.store.record_failure(account_key, now=now, window=window) > (
            self.throttle.per_account
        ):
            self._throttled("acct", (await self.store.failures(account_key, now=now))[1], now)
        user = await self.store.get_user(username) if _USERNAME.fullmatch(username) else None
        # argon2 takes tens of milliseconds and releases the GIL: run it off the event
        # loop so one login does not stall every other request.
        ok = await asyncio.to_thread(
            self.hasher.verify, user.password_hash if user else None, password
        )
        if user is None or not ok or user.disabled:
            if address_key is not None:
                await self.store.record_failure(address_key, now=now, window=window)
            _audit.warning("login_failed", extra={"sub": user.sub if user else None})
            raise InvalidCredentialsError("invalid username or password")
        await self.store.clear_failures(account_key)
        if self.hasher.needs_rehash(user.password_hash):
            rehashed = await asyncio.to_thread(self.hasher.hash, password)
            # Write over the record the password was checked against only: a password
            # change, disable or scope change made meanwhile wins. UserStore has no
            # compare-and-set, so a change landing between this read and the write below
            # is still lost; that window is one store round trip, not an argon2 run.
            current = await self.store.get_user(username)
            if current is None or _superseded(current, user.password_hash):
                self._refuse_superseded(user)
            if current != user:
                return current  # Scopes changed: keep them; rehash at the next login.
            user = replace(user, password_hash=rehashed, updated_at=now)
            await self.store.update_user(user)
        return user

    @staticmethod
    def _throttled(kind: str, ends: float, now: float) -> NoReturn:
        _audit.warning("login_throttled", extra={"key_kind": kind})
        raise LoginThrottledError("too many failed logins", retry_after=max(ends - now, 1))

    @staticmethod
    def _refuse_superseded(user: UserRecord) -> NoReturn:
        _audit.warning("login_superseded", extra={"sub": user.sub})
        raise InvalidCredentialsError("invalid username or password")

    async def login(
        self,
        username: str,
        password: str,
        *,
        scope: Sequence[str] | None = None,
        client: Client | None = None,
    ) -> TokenPair:
        """Password login: authenticate, then issue a session with the granted scopes.

        ``scope`` narrows the grant to the requested scopes the user holds; ``None`` grants
        all of the user's scopes (RFC 6749 sec. 3.3 lets the server pick a default).
        Requesting scopes none of which the user holds raises :class:`InvalidScopeError`
        (after the password is checked): an empty grant has no RFC 6749 ``scope`` value
        that could tell the client it differs from its request. Access tokens carry
        ``preferred_username`` (an OpenID Connect claim), so ``/userinfo`` needs no store
        read.
        """
        address = client.ip if client else None
        user = await self.authenticate(username, password, address=address)
        granted = self.granted_scopes(user, scope)
        if scope and not granted:
            raise InvalidScopeError("the user holds none of the requested scopes")
        pair = await self.tokens.issue(
            user.sub,
            scope=granted,
            client=client,
            claims={"preferred_username": user.username},
        )
        # A password change or disable revokes the sessions that exist when it is done,
        # and this one may have been issued just after. Either its revocation came after
        # the issue and took this session, or its write came before this read.
        current = await self.store.get_user(user.username)
        if current is None or _superseded(current, user.password_hash):
            await self.tokens.revoke_session(pair.sid, reason="login_superseded")
            self._refuse_superseded(user)
        _audit.info("login_succeeded", extra={"sub": user.sub, "sid": pair.sid})
        return pair

    @staticmethod
    def granted_scopes(user: UserRecord, requested: Sequence[str] | None) -> tuple[str, ...]:
        """The requested scopes the user holds (all of them when ``requested`` is None);
        admins also get ``admin`` unless they asked for a set without it."""
        held = user.scopes if requested is None else tuple(s for s in requested if s in user.scopes)
        if user.admin and (requested is None or "admin" in requested) and "admin" not in held:
            held = (*held, "admin")
        return held

    async def set_password(self, username: str, password: str) -> int:
        """Change a password and revoke every session of the user; return how many."""
        user = await self._require(username)
        now = self.tokens.clock.now()
        await self.store.update_user(
            replace(
                user,
                password_hash=await asyncio.to_thread(self.hasher.hash, password),
                updated_at=now,
            )
        )
        return await self.tokens.password_changed(user.sub)

    async def set_disabled(self, username: str, disabled: bool = True) -> int:
        """Disable (or enable) an account; disabling revokes its sessions."""
        user = await self._require(username)
        await self.store.update_user(
            replace(user, disabled=disabled, updated_at=self.tokens.clock.now())
        )
        if disabled:
            return await self.tokens.revoke_user(user.sub, reason="disabled")
        return 0

    async def set_scopes(
        self, username: str, scopes: Sequence[str], *, admin: bool | None = None
    ) -> UserRecord:
        """Replace a user's scopes (and admin flag); takes effect at the next login."""
        user = await self._require(username)
        updated = replace(
            user,
            scopes=_check_scopes(scopes),
            admin=user.admin if admin is None else admin,
            updated_at=self.tokens.clock.now(),
        )
        await self.store.update_user(updated)
        return updated
