"""Key sets (JWKS, RFC 7517 sec. 5) and the key-resolution seam used by verification.

A token's ``kid`` is only ever an opaque lookup key into a set the application holds
(RFC 8725 sec. 3.10): a miss is a failure, never a reason to try every key or fall back
to a default one. Sets refuse duplicate ``kid``s and mixed symmetric/asymmetric keys
(SECURITY_PROFILE R24), and every key in a set must have a ``kid``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol, Self, runtime_checkable

from tokenward.errors import InvalidKeyError, KeyNotFoundError
from tokenward.jose._crypto import VerifiedHeader
from tokenward.jose._keys import Key

__all__ = ["KeyResolver", "KeySet"]


@runtime_checkable
class KeyResolver(Protocol):
    """Anything that picks the verification key for a token from its protected header."""

    def key_for(self, header: Mapping[str, Any]) -> Key:
        """Return the key for ``header`` or raise :class:`KeyNotFoundError`."""
        ...


class KeySet:
    """An immutable set of keys selected by ``kid``.

    >>> ks = KeySet([Key.generate("ES256", kid="a"), Key.generate("ES256", kid="b")])
    >>> ks["b"].kid, len(ks), "c" in ks
    ('b', 2, False)
    """

    __slots__ = ("_decode_memo", "_headers", "_keys")

    def __init__(self, keys: Iterable[Key]) -> None:
        by_kid: dict[str, Key] = {}
        symmetric = set()
        for key in keys:
            if not isinstance(key, Key):
                raise InvalidKeyError("a KeySet holds Key objects")
            if key.kid is None:
                raise InvalidKeyError("every key in a key set needs a kid")
            if key.kid in by_kid:
                raise InvalidKeyError(f"duplicate kid {key.kid!r} in key set")
            by_kid[key.kid] = key
            symmetric.add(key.kty == "oct")
        if len(symmetric) > 1:
            raise InvalidKeyError("a key set must not mix symmetric and asymmetric keys")
        self._keys = by_kid
        # Parsed headers of verified tokens (see _compact.verify_compact): a bounded memo.
        self._headers: dict[bytes, VerifiedHeader] = {}
        # Validated jwt.decode arguments (allow-list, claim rules): a bounded memo.
        self._decode_memo: dict[Any, Any] = {}

    @classmethod
    def from_jwks(cls, jwks: Mapping[str, Any]) -> Self:
        """Load a JWKS document (``{"keys": [...]}``)."""
        if not isinstance(jwks, Mapping):
            raise InvalidKeyError("a JWKS must be a JSON object")
        keys = jwks.get("keys")
        if type(keys) is not list:
            raise InvalidKeyError("a JWKS needs a 'keys' array")
        return cls(Key.from_jwk(jwk) for jwk in keys)

    def to_jwks(self, *, private: bool = False) -> dict[str, Any]:
        """Export as a JWKS document; public members only unless ``private=True``."""
        return {"keys": [key.to_jwk(private=private) for key in self._keys.values()]}

    def public(self) -> KeySet:
        """The same set with every key reduced to its public half."""
        return KeySet(key.public_key() for key in self._keys.values())

    def key_for(self, header: Mapping[str, Any]) -> Key:
        """Select the key named by the header's ``kid``; no kid or no match is an error."""
        kid = header.get("kid")
        if kid is None:
            raise KeyNotFoundError("token has no kid, and a key set needs one to choose")
        key = self._keys.get(kid)
        if key is None:
            raise KeyNotFoundError("no key matches the token's kid")
        return key

    def __getitem__(self, kid: str) -> Key:
        try:
            return self._keys[kid]
        except KeyError:
            raise KeyNotFoundError(f"no key with kid {kid!r}") from None

    def __contains__(self, kid: object) -> bool:
        return kid in self._keys

    def __iter__(self) -> Iterator[Key]:
        return iter(self._keys.values())

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"KeySet(kids={list(self._keys)!r})"
