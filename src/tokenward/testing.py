"""Helpers for tests of applications that use tokenward: a frozen clock and key factories.

>>> from tokenward.testing import FrozenClock
>>> clock = FrozenClock(1_800_000_000)
>>> clock.advance(90)
>>> clock.now()
1800000090.0
"""

from __future__ import annotations

from datetime import timedelta

from tokenward.jose import Key

__all__ = ["FrozenClock", "signing_key"]


class FrozenClock:
    """A clock that moves only when told to; tests never sleep to pass time."""

    __slots__ = ("_now",)

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self._now = float(now)

    def now(self) -> float:
        """The frozen time in Unix seconds."""
        return self._now

    def advance(self, seconds: float | timedelta) -> None:
        """Move time forward (never backward)."""
        delta = seconds.total_seconds() if isinstance(seconds, timedelta) else float(seconds)
        if delta < 0:
            raise ValueError("a frozen clock only moves forward")
        self._now += delta

    def set(self, now: float) -> None:
        """Jump to ``now`` (which must not be in the past)."""
        if now < self._now:
            raise ValueError("a frozen clock only moves forward")
        self._now = float(now)


def signing_key(alg: str = "ES256", kid: str = "test-key") -> Key:
    """A fresh private key for ``alg`` with a fixed ``kid``, for tests."""
    return Key.generate(alg, kid=kid)
