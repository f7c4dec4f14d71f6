"""The key ring: signing keys kept in the store so every instance agrees (DESIGN.md, "Keys").

States: ``next`` (published, not yet signing), ``current`` (signing; one at a time),
``retired`` (published until every token it signed has expired, then removed). Private
keys can be encrypted at rest with a 32-octet key-encryption key (AES-256-GCM, the
``kid`` as associated data, so a ciphertext cannot be moved to another key's row).

Every process holds a copy of the ring. After a rotation elsewhere, a process goes on
signing with the old key until it reloads the ring. Processes that share a store must
reload it at least every :data:`SIGNING_LAG` seconds (the auth server does, every
minute); a retired key stays published for that much longer than the tokens it signed
live, so none of them outlives its key.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tokenward.errors import ConfigurationError
from tokenward.jose import ALGORITHMS, Key, KeySet
from tokenward.service._clock import Clock
from tokenward.stores.base import KeyRecord, KeyState, SessionStore

__all__ = ["SIGNING_LAG", "KeyRing"]

_SEALED_PREFIX = b"tw-kek1:"

SIGNING_LAG = 120.0
"""The longest a process sharing the store may go without reloading the ring: how long it
may sign with a key another process has retired, or serve a JWKS without a key another
process has added. The auth server reloads every 60 s (``key_interval``, at most half of
this, so a slow round stays within it)."""


class KeyRing:
    """Signing and verification keys backed by a store.

    Call :meth:`load` once before use; it creates the first key when the store has none.
    ``retire_for`` is how long a retired key stays published: the longest lifetime of a
    token it may have signed.
    """

    def __init__(
        self,
        store: SessionStore,
        *,
        algorithm: str,
        clock: Clock,
        retire_for: float,
        kek: bytes | None = None,
    ) -> None:
        if algorithm not in ALGORITHMS:
            raise ConfigurationError(f"algorithm {algorithm!r} is not supported")
        if kek is not None and (type(kek) is not bytes or len(kek) != 32):
            raise ConfigurationError("the key-encryption key must be 32 random octets")
        self._store = store
        self._algorithm = algorithm
        self._clock = clock
        self._retire_for = retire_for
        self._aead = AESGCM(kek) if kek is not None else None
        self._records: list[KeyRecord] = []
        self._algorithms: frozenset[str] = frozenset()
        self._current: Key | None = None
        self._verification = KeySet([])

    # -- loading ------------------------------------------------------------------------

    def _encode(self, key: Key) -> bytes:
        plain = json.dumps(key.to_jwk(private=True), separators=(",", ":")).encode()
        if self._aead is None:
            return plain
        nonce = os.urandom(12)
        return _SEALED_PREFIX + nonce + self._aead.encrypt(nonce, plain, (key.kid or "").encode())

    def _decode(self, record: KeyRecord) -> Key:
        material = record.material
        if material.startswith(_SEALED_PREFIX):
            if self._aead is None:
                raise ConfigurationError(
                    "signing keys are encrypted at rest; configure the key-encryption key"
                )
            body = material[len(_SEALED_PREFIX) :]
            try:
                material = self._aead.decrypt(body[:12], body[12:], record.kid.encode())
            except InvalidTag:
                raise ConfigurationError(
                    "the key-encryption key does not open the stored signing keys"
                ) from None
        return Key.from_jwk(json.loads(material))

    def _new_record(self, state: KeyState) -> KeyRecord:
        key = Key.generate(self._algorithm)
        return KeyRecord(
            key.kid or "", self._algorithm, state, self._encode(key), self._clock.now()
        )

    async def load(self) -> None:
        """Read the keys from the store; create and store a current key if there is none."""
        records = list(await self._store.list_keys())
        if not any(r.state is KeyState.CURRENT for r in records):
            await self._store.put_key(self._new_record(KeyState.CURRENT))
            records = list(await self._store.list_keys())
        self._install(records)

    def _install(self, records: list[KeyRecord]) -> None:
        keys = {r.kid: self._decode(r) for r in records}
        current = [r for r in records if r.state is KeyState.CURRENT]
        # Two instances starting at once may both create a key: the oldest one signs,
        # and both are published, so tokens from either verify everywhere.
        current.sort(key=lambda r: (r.created_at, r.kid))
        self._records = records
        # Read on every refresh; computed once per (re)load, not per call.
        self._algorithms = frozenset(r.alg for r in records)
        self._current = keys[current[0].kid]
        published = list(keys.values())
        if self._current.kty == "oct":
            self._verification = KeySet(published)
        else:
            self._verification = KeySet(k.public_key() for k in published)

    # -- use ----------------------------------------------------------------------------

    @property
    def current(self) -> Key:
        """The key that signs new tokens."""
        if self._current is None:
            raise ConfigurationError("the key ring is not loaded; await KeyRing.load() first")
        return self._current

    @property
    def verification_keys(self) -> KeySet:
        """Every published key (next, current, retired), public halves only."""
        return self._verification

    @property
    def algorithms(self) -> frozenset[str]:
        """The algorithms of all published keys."""
        return self._algorithms

    @property
    def records(self) -> list[KeyRecord]:
        """Stored key records (material stays opaque), oldest first."""
        return list(self._records)

    def jwks(self) -> dict[str, object]:
        """The public JWKS document; empty for HMAC keys, which are never published."""
        if self.current.kty == "oct":
            return {"keys": []}
        return self._verification.to_jwks()

    # -- rotation -----------------------------------------------------------------------

    async def add_next(self) -> Key:
        """Create a key in state ``next``: published now, signing after :meth:`rotate`."""
        record = self._new_record(KeyState.NEXT)
        await self._store.put_key(record)
        await self.load()
        return self._verification[record.kid]

    async def rotate(self) -> Key:
        """Promote the oldest ``next`` key (or a new one) to ``current``; retire the old one."""
        await self.load()
        now = self._clock.now()
        waiting = [r for r in self._records if r.state is KeyState.NEXT]
        if waiting:
            promoted = replace(waiting[0], state=KeyState.CURRENT)
        else:
            promoted = self._new_record(KeyState.CURRENT)
        await self._store.put_key(promoted)
        for record in self._records:
            if record.state is KeyState.CURRENT and record.kid != promoted.kid:
                # Other processes may sign with it for up to SIGNING_LAG more.
                retired = replace(
                    record,
                    state=KeyState.RETIRED,
                    retire_after=now + SIGNING_LAG + self._retire_for,
                )
                await self._store.put_key(retired)
        await self.load()
        return self.current

    async def prune(self) -> list[str]:
        """Delete retired keys whose tokens have all expired; return their kids."""
        now = self._clock.now()
        gone = [
            r.kid
            for r in self._records
            if r.state is KeyState.RETIRED and r.retire_after is not None and r.retire_after <= now
        ]
        for kid in gone:
            await self._store.delete_key(kid)
        if gone:
            await self.load()
        return gone
