"""tokenward.stores: the session store contract and its backends.

Backends are imported lazily by :func:`open_store`, so that only the client library of
the chosen backend needs to be installed.
"""

from __future__ import annotations

from typing import Protocol

from tokenward.errors import ConfigurationError
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
]


async def open_store(url: str) -> Store:
    """Open the store named by ``url``.

    * ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db`` (the default);
    * ``redis://host:port/db`` (``rediss://`` for TLS);
    * ``redis+cluster://host:port[,host:port...]`` (``rediss+cluster://`` for TLS):
      Redis Cluster, through any of the nodes listed;
    * ``postgresql://user@host:port/dbname``;
    * ``memory://`` (nothing is kept; for demos and tests).
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ConfigurationError(f"store URL must look like scheme://..., got {url!r}")
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
    raise ConfigurationError(
        f"unsupported store scheme {scheme!r}:"
        " use sqlite, redis, redis+cluster, postgresql or memory"
    )
