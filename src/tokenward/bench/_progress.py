"""A progress bar on stderr, in plain text: no dependency, no colours.

On a terminal it redraws one line (``\\r``) at most ten times a second; anywhere else
(a CI log, a pipe) it writes a line at each tenth of a phase that has run for more
than ten seconds, and one when a phase ends, so logs get no carriage-return clutter.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress"]

_WIDTH = 28
_REDRAW = 0.1
_QUIET_START = 10.0


class Progress:
    """Report the progress of one phase after another on ``stream`` (stderr by default)."""

    def __init__(self, stream: TextIO | None = None, *, enabled: bool = True) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        try:
            self._tty = enabled and self._stream.isatty()
        except (AttributeError, ValueError):
            self._tty = False
        self._label = ""
        self._total = 0
        self._started = 0.0
        self._drawn = 0.0
        self._step = 0

    def start(self, label: str, total: int) -> None:
        """Begin a phase of ``total`` steps."""
        self._label = label
        self._total = max(1, total)
        self._started = time.perf_counter()
        self._drawn = 0.0
        self._step = 0
        self.update(0)

    def update(self, done: int) -> None:
        """``done`` steps of the current phase are complete (cheap to call often)."""
        if not self._tty:
            if self.enabled:
                self._log(done)
            return
        now = time.perf_counter()
        if done < self._total and now - self._drawn < _REDRAW:
            return
        self._drawn = now
        fraction = min(1.0, done / self._total)
        filled = int(fraction * _WIDTH)
        elapsed = now - self._started
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (self._total - done) / rate if rate > 0 else 0.0
        bar = "#" * filled + "." * (_WIDTH - filled)
        self._write(
            f"\r{self._label:<40} [{bar}] {fraction:4.0%} {done:>12,}/{self._total:,}"
            f" {rate:>10,.0f}/s  eta {_clock(eta)}\x1b[K"
        )

    def _log(self, done: int) -> None:
        # Not a terminal: a line at each tenth, once the phase has run for a while, so
        # a long run shows it is alive in a log without cluttering a short one.
        step = done * 10 // self._total
        if step <= self._step:
            return
        self._step = step
        elapsed = time.perf_counter() - self._started
        if elapsed < _QUIET_START or step >= 10:
            return
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (self._total - done) / rate if rate > 0 else 0.0
        self._write(f"{self._label}: {step * 10}% ({done:,}/{self._total:,}), eta {_clock(eta)}\n")

    def finish(self, summary: str = "") -> None:
        """End the current phase with a one-line summary."""
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self._started
        line = f"{self._label:<40} done in {elapsed:.1f} s" + (f"  {summary}" if summary else "")
        self._write(("\r" + line + "\x1b[K\n") if self._tty else line + "\n")

    def note(self, text: str) -> None:
        """A line of its own (a phase that has no steps to count)."""
        if self.enabled:
            self._write(("\r\x1b[K" if self._tty else "") + text + "\n")

    def _write(self, text: str) -> None:
        try:
            self._stream.write(text)
            self._stream.flush()
        except (OSError, ValueError):
            self.enabled = self._tty = False


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60:d}:{seconds % 60:02d}"
