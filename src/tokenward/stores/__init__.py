"""tokenward.stores: the session store contract and its backends.

Backends are imported lazily by :func:`open_store`, so that only the client library of
the chosen backend needs to be installed.
"""

from __future__ import annotations

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
)
from tokenward.stores.memory import MemoryStore

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
    "StoreError",
    "StoreUnavailableError",
]
