"""Clocks: the service reads time only through one of these (DESIGN.md, "Layers")."""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Clock", "SystemClock"]


class Clock(Protocol):
    """Anything with ``now()`` returning Unix seconds."""

    def now(self) -> float:
        """Current time in Unix seconds."""
        ...


class SystemClock:
    """The wall clock (``time.time()``)."""

    __slots__ = ()

    def now(self) -> float:
        """Current time in Unix seconds."""
        return time.time()
