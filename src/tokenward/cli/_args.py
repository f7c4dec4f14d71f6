"""Value types for command-line options: durations, Unix times and seconds.

Each converter raises :class:`argparse.ArgumentTypeError`, so a bad value becomes a
one-line usage error (exit status 2) that names the option.
"""

from __future__ import annotations

import argparse
import math
import re

__all__ = ["duration", "non_negative_seconds", "unix_time"]

_DURATION = re.compile(r"([0-9]{1,12})([smhdw]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def duration(text: str) -> int:
    """Parse ``90``, ``90s``, ``15m``, ``1h``, ``2d`` or ``1w`` into a positive number of seconds.

    >>> duration("15m")
    900
    """
    match = _DURATION.fullmatch(text)
    if match is None:
        raise argparse.ArgumentTypeError(
            f"invalid duration {text!r}: use seconds or a number with s, m, h, d or w, e.g. 15m"
        )
    seconds = int(match[1]) * _UNITS[match[2]]
    if seconds <= 0:
        raise argparse.ArgumentTypeError("duration must be positive")
    return seconds


def _number(text: str, what: str) -> int | float:
    try:
        value: int | float = int(text)
    except ValueError:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid {what} {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{what} must be a finite number >= 0")
    return value


def unix_time(text: str) -> int | float:
    """Parse a Unix time in seconds (``1700000000``); integers stay integers.

    >>> unix_time("1700000000")
    1700000000
    """
    return _number(text, "Unix time")


def non_negative_seconds(text: str) -> int | float:
    """Parse a non-negative number of seconds (``30``, ``0.5``).

    >>> non_negative_seconds("30")
    30
    """
    return _number(text, "number of seconds")
