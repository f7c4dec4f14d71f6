"""The token service: sessions, access/refresh pairs, rotation, sliding and revocation.

One login creates a session and an access/refresh pair. Access tokens are verified
with no store I/O (:meth:`TokenService.verify_access`). A refresh verifies the refresh
JWT first (garbage and expired tokens never reach the store), then makes exactly one
atomic store call (:meth:`~tokenward.stores.base.SessionStore.rotate`), whose outcome
decides: rotate, replay the same successor (grace window), or detect reuse and revoke
the whole session. See ``docs/lifecycle.md`` for a worked example.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from tokenward._frozen import unfrozen_twin
from tokenward.errors import ConfigurationError, KeyNotFoundError
from tokenward.jose import ClaimRules, jwt
from tokenward.jose._b64 import b64u_encode
from tokenward.service._clock import Clock, SystemClock
from tokenward.service._deny import DenyList
from tokenward.service._errors import (
    ClientMismatchError,
    GrantError,
    InvalidScopeError,
    RefreshReuseError,
    SessionExpiredError,
    SessionRevokedError,
    UnknownSessionError,
    WrongTokenTypeError,
)
from tokenward.service._keyring import KeyRing
from tokenward.service._keysources import KeyRingKeys
from tokenward.service._policy import RESERVED_CLAIMS, TokenPolicy
from tokenward.service._seal import open_successor, seal_successor
from tokenward.service._verifier import AccessClaims, Verifier
from tokenward.stores.base import (
    NewSession,
    RevocationEvent,
    RevocationKind,
    RotateStatus,
    Rotation,
    SessionRecord,
    SessionStore,
    StoreError,
)

__all__ = ["AccessClaims", "Client", "TokenPair", "TokenService"]

ACCESS_TYP = "at+jwt"
REFRESH_TYP = "rt+jwt"
_audit = logging.getLogger("tokenward.audit")
_log = logging.getLogger("tokenward.service")

# OpenID Connect Core 1.0 sec. 2: a sub is at most 255 ASCII characters. Here 255 UTF-8
# octets, so it fits both tokens and every store's columns.
_MAX_SUBJECT_OCTETS = 255
_MAX_USER_AGENT = 512
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def _check_subject(subject: object) -> str:
    if not isinstance(subject, str) or not subject:
        raise ConfigurationError("subject must be a non-empty string")
    try:
        size = len(subject.encode("utf-8"))
    except UnicodeEncodeError:
        raise ConfigurationError("subject must be Unicode text (no lone surrogates)") from None
    if size > _MAX_SUBJECT_OCTETS or _CONTROL.search(subject):
        raise ConfigurationError(
            f"subject must be at most {_MAX_SUBJECT_OCTETS} UTF-8 octets, with no control"
            " characters"
        )
    return subject


def _metadata(text: str | None, limit: int) -> str | None:
    """Session metadata (a user agent) as every store can keep it: control characters
    and lone surrogates replaced, at most ``limit`` characters. It is shown, never trusted."""
    if text is None:
        return None
    text = _CONTROL.sub("\ufffd", text[:limit])
    return text.encode("utf-8", "replace").decode("utf-8")


@dataclass(frozen=True, slots=True)
class Client:
    """Who is logging in from where; stored with the session, shown in session lists."""

    client_id: str = "default"
    user_agent: str | None = None
    ip: str | None = None


@dataclass(frozen=True, slots=True)
class TokenPair:
    """An access token and its refresh token, as handed to a client (RFC 6749 sec. 5.1)."""

    access_token: str
    refresh_token: str
    expires_in: int
    scope: str
    sid: str
    refresh_expires_at: int
    token_type: str = "Bearer"

    def _to_bytes(self) -> bytes:
        # Six lines: the fields never hold a line break (two compact JWS, an id, a scope
        # of printable tokens, two integers). JSON escaping would scan both tokens again.
        # The guard looks for a line break in each text field (memchr), not through all.
        text = (
            f"{self.access_token}\n{self.refresh_token}\n{self.expires_in:d}\n"
            f"{self.scope}\n{self.sid}\n{self.refresh_expires_at:d}"
        )
        if (
            "\n" in self.access_token
            or "\n" in self.refresh_token
            or "\n" in self.scope
            or "\n" in self.sid
        ):  # A line break would shift the lines: the JSON form instead.
            text = json.dumps(
                [self.access_token, self.refresh_token, self.expires_in, self.scope,
                 self.sid, self.refresh_expires_at],
                separators=(",", ":"),
            )  # fmt: skip
        return text.encode()

    @classmethod
    def _from_bytes(cls, data: bytes) -> TokenPair:
        # A JSON array: what earlier builds sealed (a successor is kept for the grace
        # window only, so this matters only across an upgrade), and the fallback above.
        if data[:1] == b"[":
            access, refresh, expires_in, scope, sid, refresh_exp = json.loads(data)
            return cls(access, refresh, expires_in, scope, sid, refresh_exp)
        access, refresh, expires_text, scope, sid, refresh_exp_text = data.decode().split("\n")
        return cls(access, refresh, int(expires_text), scope, sid, int(refresh_exp_text))


# Built on every refresh: the frozen classes' per-field object.__setattr__ cost more than
# the rest of building them (see tokenward._frozen).
_TokenPairTwin = unfrozen_twin(TokenPair)
_RotationTwin = unfrozen_twin(Rotation)


def _token_id() -> str:
    # secrets.token_urlsafe(32), the same text, without its two Python-level calls.
    return b64u_encode(os.urandom(32))


def _hash(jti: str) -> bytes:
    return hashlib.sha256(jti.encode()).digest()


def _scope_text(scope: str | Sequence[str]) -> str:
    items = scope.split() if isinstance(scope, str) else list(scope)
    if not all(isinstance(s, str) and s and s.isprintable() and " " not in s for s in items):
        raise ConfigurationError("scopes must be non-empty printable strings without spaces")
    return " ".join(dict.fromkeys(items))


class TokenService:
    """Issue, refresh, verify, extend and revoke tokens over a :class:`SessionStore`.

    Build it with :meth:`create`, which loads (or creates) the signing keys::

        service = await TokenService.create(store, TokenPolicy(issuer=..., audience=...))
        pair = await service.issue("ada", scope="read")
        claims = service.verify_access(pair.access_token)
        pair = await service.refresh(pair.refresh_token)
    """

    def __init__(
        self,
        store: SessionStore,
        keyring: KeyRing,
        policy: TokenPolicy,
        *,
        clock: Clock | None = None,
        deny: DenyList | None = None,
    ) -> None:
        self.store = store
        self.keyring = keyring
        self.policy = policy
        self.clock: Clock = clock or SystemClock()
        self.deny = deny if deny is not None else DenyList()
        # The one verification path: the same Verifier a resource server uses, over this
        # process's key ring (so rotation shows at once) and this service's deny list.
        self.verifier = Verifier(
            KeyRingKeys(keyring, clock=self.clock),
            issuer=policy.issuer,
            audience=policy.audience,
            leeway=policy.leeway,
            clock=self.clock,
            deny=self.deny,
        )
        # Refresh tokens are decoded accepting both audiences, so that an access token
        # presented as a refresh token gets the precise wrong_token_type error.
        self._refresh_rules = ClaimRules.create(
            issuer=policy.issuer,
            audience=(policy.refresh_audience, policy.audience),
            leeway=policy.leeway,
            require=("exp", "iat", "sub", "sid", "jti"),
        )
        self._revocation_ttl = policy.access_lifetime + policy.leeway

    @classmethod
    async def create(
        cls,
        store: SessionStore,
        policy: TokenPolicy,
        *,
        clock: Clock | None = None,
        kek: bytes | None = None,
    ) -> TokenService:
        """Load the key ring from ``store`` (creating the first key) and build a service."""
        clock = clock or SystemClock()
        keyring = KeyRing(
            store,
            algorithm=policy.algorithm,
            clock=clock,
            retire_for=policy.refresh_lifetime + policy.leeway,
            kek=kek,
        )
        await keyring.load()
        return cls(store, keyring, policy, clock=clock)

    # -- minting --------------------------------------------------------------------------

    def _access_token(
        self,
        *,
        sub: str,
        sid: str,
        scope: str,
        client_id: str | None,
        iat: int,
        session_exp: int,
        ext: Mapping[str, Any] | None = None,
    ) -> tuple[str, int]:
        exp = min(iat + int(self.policy.access_lifetime), session_exp)
        claims: dict[str, Any] = dict(ext) if ext else {}
        hook = self.policy.claims_hook
        if hook is not None:
            extra = dict(hook(sub, frozenset(scope.split())))
            clash = RESERVED_CLAIMS & extra.keys()
            if clash:
                raise ConfigurationError(f"claims hook may not set {sorted(clash)}")
            claims.update(extra)
        claims.update(
            iss=self.policy.issuer, sub=sub, aud=self.policy.audience, exp=exp, nbf=iat, iat=iat,
            jti=_token_id(), sid=sid, scope=scope, token_type="access", session_exp=session_exp,
        )  # fmt: skip
        if client_id is not None:
            claims["client_id"] = client_id
        return jwt.encode(claims, self.keyring.current, typ=ACCESS_TYP), exp - iat

    def _pair(
        self,
        *,
        sub: str,
        sid: str,
        scope: str,
        client_id: str | None,
        generation: int,
        iat: int,
        session_exp: int,
        ext: Mapping[str, Any] | None,
    ) -> tuple[TokenPair, str]:
        access, expires_in = self._access_token(
            sub=sub, sid=sid, scope=scope, client_id=client_id, iat=iat,
            session_exp=session_exp, ext=ext,
        )  # fmt: skip
        jti = _token_id()
        refresh_exp = min(iat + int(self.policy.refresh_lifetime), session_exp)
        refresh_claims: dict[str, Any] = {
            "iss": self.policy.issuer, "sub": sub, "aud": self.policy.refresh_audience,
            "exp": refresh_exp, "iat": iat, "jti": jti, "sid": sid, "gen": generation,
            "scope": scope, "token_type": "refresh", "session_exp": session_exp,
        }  # fmt: skip
        if client_id is not None:
            refresh_claims["client_id"] = client_id
        if ext:
            refresh_claims["ext"] = dict(ext)
        refresh = jwt.encode(refresh_claims, self.keyring.current, typ=REFRESH_TYP)
        pair: TokenPair = _TokenPairTwin(access, refresh, expires_in, scope, sid, refresh_exp)
        pair.__class__ = TokenPair  # See tokenward._frozen.
        return pair, jti

    async def issue(
        self,
        subject: str,
        *,
        scope: str | Sequence[str] = "",
        client: Client | None = None,
        claims: Mapping[str, Any] | None = None,
    ) -> TokenPair:
        """Create a session for ``subject`` (after the caller authenticated it) and a pair.

        ``claims`` are extra access-token claims for this session; they are carried in
        the (signed) refresh token so every refreshed access token has them too.
        """
        subject = _check_subject(subject)
        if claims is not None:
            clash = RESERVED_CLAIMS & claims.keys()
            if clash:
                raise ConfigurationError(f"claims may not set {sorted(clash)}")
        client = client or Client()
        scope_text = _scope_text(scope)
        now = self.clock.now()
        iat = math.floor(now)
        absolute = now + self.policy.absolute_lifetime
        # A leading letter: a base64url id may start with "-", which command lines
        # (tokenward sessions revoke SID) would take for an option.
        sid = "s-" + secrets.token_urlsafe(16)
        pair, jti = self._pair(
            sub=subject, sid=sid, scope=scope_text, client_id=client.client_id, generation=0,
            iat=iat, session_exp=math.floor(absolute), ext=claims,
        )  # fmt: skip
        await self.store.create_session(
            NewSession(
                sid=sid, sub=subject, created_at=now,
                idle_expires_at=min(now + self.policy.idle_timeout, absolute),
                absolute_expires_at=absolute, refresh_hash=_hash(jti), scope=scope_text,
                client_id=client.client_id, ip=client.ip,
                user_agent=_metadata(client.user_agent, _MAX_USER_AGENT),
            )
        )  # fmt: skip
        _audit.info("session_created", extra={"sid": sid, "sub": subject})
        return pair

    # -- verification (no store I/O) ----------------------------------------------------

    def verify_refresh(self, refresh_token: str | bytes) -> dict[str, Any]:
        """Verify a refresh token's signature, type and claims with no store I/O.

        Whether it is still its session's current token is the store's business
        (:meth:`refresh`); this is for revocation and introspection endpoints.
        """
        header, claims = jwt.decode_with_header(
            refresh_token,
            self.keyring.verification_keys,
            algorithms=self.keyring.algorithms,
            rules=self._refresh_rules,
            now=self.clock.now(),
        )
        if header.get("typ") != REFRESH_TYP or claims.get("token_type") != "refresh":
            raise WrongTokenTypeError("this is not a refresh token")
        if claims.get("aud") != self.policy.refresh_audience:
            raise WrongTokenTypeError("refresh tokens are addressed to the issuer")
        if (
            type(claims.get("gen")) is not int
            or type(claims.get("session_exp")) is not int
            or type(claims.get("sid")) is not str
        ):
            raise UnknownSessionError("refresh token claims are malformed")
        return claims

    async def verify_refresh_async(self, refresh_token: str | bytes) -> dict[str, Any]:
        """:meth:`verify_refresh`, reloading the key ring (rate limited) for an unknown ``kid``."""
        try:
            return self.verify_refresh(refresh_token)
        except KeyNotFoundError:
            # Another instance may have rotated the signing key: reload the ring (rate
            # limited by the key source) and try once more.
            if not await self.verifier.keys.refresh_for_unknown_kid():
                raise
            return self.verify_refresh(refresh_token)

    async def verify_access_async(self, token: str | bytes) -> AccessClaims:
        """:meth:`verify_access`, reloading the key ring (rate limited) for an unknown ``kid``."""
        return await self.verifier.verify_async(token)

    def verify_access(self, token: str | bytes) -> AccessClaims:
        """Verify an access token with no store I/O: signature, claims, type, deny list.

        Delegates to :attr:`verifier` (verified-token cache included).
        """
        return self.verifier.verify(token)

    def extend(self, access_token: str | bytes) -> str | None:
        """Sliding on action: a fresh access token once the presented one is past half its life.

        Returns None while the token is in its first half, or when the session's absolute
        expiry leaves nothing to extend. Never extends past the session's absolute expiry.
        """
        verified = self.verify_access(access_token)
        now = self.clock.now()
        if now < verified.iat + (verified.exp - verified.iat) / 2:
            return None
        session_exp = verified.claims.get("session_exp")
        if type(session_exp) is not int:
            return None
        iat = math.floor(now)
        if session_exp <= iat or verified.exp >= session_exp:
            return None
        token, _ = self._access_token(
            sub=verified.sub, sid=verified.sid, scope=" ".join(sorted(verified.scopes)),
            client_id=verified.client_id, iat=iat, session_exp=session_exp,
            ext={k: v for k, v in verified.claims.items() if k not in RESERVED_CLAIMS},
        )  # fmt: skip
        return token

    # -- refresh ------------------------------------------------------------------------

    async def refresh(
        self,
        refresh_token: str | bytes,
        *,
        scope: str | Sequence[str] | None = None,
        client_id: str | None = None,
    ) -> TokenPair:
        """Rotate a refresh token: one atomic store call; see the module docstring.

        ``scope`` may narrow the new access token's scope (RFC 6749 sec. 6); asking for a
        scope the session was not granted raises :class:`InvalidScopeError`. With
        ``client_id`` (the authenticated client), a token issued to another client raises
        :class:`ClientMismatchError`; both are checked before any store I/O.
        """
        claims = await self.verify_refresh_async(refresh_token)
        if client_id is not None and claims.get("client_id", client_id) != client_id:
            raise ClientMismatchError("the refresh token was issued to another client")
        now = self.clock.now()
        sid, jti, gen = claims["sid"], claims["jti"], claims["gen"]
        session_exp, scope_text = claims["session_exp"], claims.get("scope", "")
        client_id = claims.get("client_id")
        ext = claims.get("ext")
        original = scope_text.split() if type(scope_text) is str else []
        narrowed = None
        if scope is not None:
            requested = _scope_text(scope).split()
            if not set(requested) <= set(original):
                raise InvalidScopeError("a refresh may only narrow the granted scope")
            if set(requested) != set(original):
                narrowed = " ".join(s for s in original if s in requested)
        iat = math.floor(now)
        pair, successor_jti = self._pair(
            sub=claims["sub"], sid=sid, scope=" ".join(original),
            client_id=client_id if type(client_id) is str else None, generation=gen + 1,
            iat=iat, session_exp=session_exp, ext=ext if type(ext) is dict else None,
        )  # fmt: skip
        sealed = seal_successor(jti, sid, gen + 1, pair._to_bytes())
        rotation: Rotation = _RotationTwin(
            sid=sid, generation=gen, presented_hash=_hash(jti),
            successor_hash=_hash(successor_jti), successor_sealed=sealed, now=now,
            idle_expires_at=min(now + self.policy.idle_timeout, float(session_exp)),
            grace=self.policy.reuse_grace, event_expires_at=now + self._revocation_ttl,
        )  # fmt: skip
        rotation.__class__ = Rotation  # See tokenward._frozen.
        result = await self.store.rotate(rotation)
        status = result.status
        if status is RotateStatus.REPLAYED and result.sealed is not None:
            opened = open_successor(jti, sid, gen + 1, result.sealed)
            if opened is None:
                raise UnknownSessionError("the stored successor does not match this token")
            pair = TokenPair._from_bytes(opened)
        if status in (RotateStatus.ROTATED, RotateStatus.REPLAYED):
            if narrowed is None:
                return pair
            token, expires_in = self._access_token(
                sub=claims["sub"], sid=sid, scope=narrowed,
                client_id=client_id if type(client_id) is str else None,
                iat=math.floor(now), session_exp=session_exp,
                ext=ext if type(ext) is dict else None,
            )  # fmt: skip
            return replace(pair, access_token=token, expires_in=expires_in, scope=narrowed)
        if status is RotateStatus.REUSED:
            self.deny.apply(
                RevocationEvent(0, RevocationKind.SESSION, now, now + self._revocation_ttl, sid=sid)
            )
            _audit.warning(
                "refresh_reuse_detected", extra={"sid": sid, "sub": claims["sub"], "gen": gen}
            )
            raise RefreshReuseError("refresh token reuse detected; the session is revoked")
        errors: dict[RotateStatus, type[GrantError]] = {
            RotateStatus.EXPIRED: SessionExpiredError,
            RotateStatus.REVOKED: SessionRevokedError,
        }
        raise errors.get(status, UnknownSessionError)(f"refresh refused: session {status.value}")

    # -- revocation and housekeeping -------------------------------------------------------

    async def revoke_session(self, sid: str, *, reason: str = "revoked") -> bool:
        """Revoke one session; its access tokens are denied here and, via the feed, everywhere."""
        now = self.clock.now()
        done = await self.store.revoke_session(
            sid, now=now, reason=reason, event_expires_at=now + self._revocation_ttl
        )
        self.deny.apply(
            RevocationEvent(0, RevocationKind.SESSION, now, now + self._revocation_ttl, sid=sid)
        )
        _audit.info("session_revoked", extra={"sid": sid, "reason": reason})
        return done

    async def revoke_user(self, sub: str, *, reason: str = "revoked") -> int:
        """Revoke every session of ``sub`` and deny its access tokens issued before now."""
        now = self.clock.now()
        count = await self.store.revoke_user(
            sub, now=now, reason=reason, event_expires_at=now + self._revocation_ttl
        )
        self.deny.apply(
            RevocationEvent(0, RevocationKind.USER, now, now + self._revocation_ttl, sub=sub)
        )
        if count:
            # The USER event denies tokens issued before this second only. The store also
            # recorded a SESSION event per revoked session, which denies their tokens from
            # this very second too: read them back, so this process denies them at once.
            try:
                self.deny.apply_all(await self.store.revocations_since(self.deny.last_seq, now=now))
            except StoreError:
                # The revocation stands; the events reach this deny list through a
                # follower, if there is one. Only the same-second tokens are affected.
                _log.warning("user revoked; its session events could not be read back yet")
        _audit.info("user_revoked", extra={"sub": sub, "reason": reason, "sessions": count})
        return count

    async def password_changed(self, sub: str) -> int:
        """A user's password changed: revoke all of their sessions."""
        return await self.revoke_user(sub, reason="password_changed")

    async def revoke_all(self, *, reason: str = "revoked") -> int:
        """Revoke every session and deny every access token issued before now."""
        now = self.clock.now()
        count = await self.store.revoke_all(
            now=now, reason=reason, event_expires_at=now + self._revocation_ttl
        )
        self.deny.apply(RevocationEvent(0, RevocationKind.ALL, now, now + self._revocation_ttl))
        _audit.warning("all_revoked", extra={"reason": reason, "sessions": count})
        return count

    async def list_sessions(self, sub: str) -> Sequence[SessionRecord]:
        """``sub``'s active sessions, oldest first."""
        return await self.store.list_sessions(sub, self.clock.now())

    async def purge_expired(self, *, batch: int = 500) -> int:
        """Delete expired sessions and events in batches of ``batch`` until none are left."""
        if type(batch) is not int or not 0 < batch <= 10_000:
            raise ConfigurationError("batch must be an int in 1..10000")
        total = 0
        now = self.clock.now()
        while True:
            deleted = await self.store.purge_expired(now=now, batch=batch)
            total += deleted
            if deleted == 0:
                self.deny.prune(now)
                return total
