"""tokenward.stores: the session store contract and its backends.

Backends are imported lazily by :func:`open_store`, so that only the client library of
the chosen backend needs to be installed. A store URL may hold a password: print or log
it only through :func:`redact_store_url`.
"""

from __future__ import annotations

from typing import Protocol

from tokenward.errors import ConfigurationError
from tokenward.stores._url import check_store_url, looks_like_scheme, redact_store_url
from tokenward.stores.base import (
    KeyRecord,
    KeyState,
    NewSession,
    RevocationEvent,
    RevocationKind,
    RotateResult,
    RotateStatus,
    Rotation,
    SessionRecord,
    SessionStore,
    StoreError,
    StoreUnavailableError,
    UserExistsError,
    UserRecord,
    UserStore,
)
from tokenward.stores.memory import MemoryStore


class Store(SessionStore, UserStore, Protocol):
    """A backend that keeps both sessions and users (every backend does)."""


__all__ = [
    "KeyRecord",
    "KeyState",
    "MemoryStore",
    "NewSession",
    "RevocationEvent",
    "RevocationKind",
    "RotateResult",
    "RotateStatus",
    "Rotation",
    "SessionRecord",
    "SessionStore",
    "Store",
    "StoreError",
    "StoreUnavailableError",
    "UserExistsError",
    "UserRecord",
    "UserStore",
    "open_store",
    "redact_store_url",
]


async def open_store(url: str) -> Store:
    """Open the store named by ``url``.

    * ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db`` (the default);
    * ``redis://host:port/db`` (``rediss://`` for TLS);
    * ``redis+cluster://host:port[,host:port...]`` (``rediss+cluster://`` for TLS):
      Redis Cluster, through any of the nodes listed;
    * ``postgresql://user@host:port/dbname``;
    * ``memory://`` (nothing is kept; for demos and tests).

    A URL that is malformed, or that its client library would read otherwise than it
    looks, raises :class:`~tokenward.errors.ConfigurationError`; no message repeats
    the URL, which may hold a password.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ConfigurationError(
            "store URL must look like scheme://..., e.g. sqlite:///tokenward.db"
        )
    check_store_url(url)
    if scheme == "sqlite":
        path = rest[1:] if rest.startswith("/") else rest
        if not path:
            raise ConfigurationError("sqlite store URL needs a path: sqlite:///tokenward.db")
        from tokenward.stores.sqlite import SQLiteStore

        return await SQLiteStore.open(path)
    if scheme in ("redis", "rediss", "redis+cluster", "rediss+cluster"):
        from tokenward.stores.redis import RedisStore

        return await RedisStore.connect(url)
    if scheme in ("postgresql", "postgres"):
        from tokenward.stores.postgres import PostgresStore

        return await PostgresStore.connect(url)
    if scheme == "memory":
        return MemoryStore()
    # The scheme is repeated only if it looks like one: the text before "://" could be
    # anything, a password included.
    shown = f" {scheme!r}" if looks_like_scheme(scheme) else ""
    raise ConfigurationError(
        f"unsupported store scheme{shown}: use sqlite, redis, redis+cluster, postgresql or memory"
    )
