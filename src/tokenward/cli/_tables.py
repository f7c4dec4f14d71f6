"""Output of the server-side listing commands: aligned text tables and UTC times.

Tables are for people (``users list``, ``sessions list``, ``keys list``); every one of
those commands also takes ``--json`` for scripts, where times stay Unix seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from tokenward.cli._io import write_line

__all__ = ["format_time", "write_table"]

_MAX_CELL = 64


def format_time(unix: float | None) -> str:
    """A Unix time as ``2026-11-03 14:05:09Z`` (UTC, to the second); ``-`` for none.

    >>> format_time(1700000000)
    '2023-11-14 22:13:20Z'
    """
    if unix is None:
        return "-"
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _cell(value: str) -> str:
    # One line per row whatever a client put in its user agent, and no control
    # characters (terminal escape sequences) reach the operator's terminal.
    text = "".join(c if c.isprintable() else "?" for c in " ".join(value.split())) or "-"
    # Long cells are cut short with "...".
    return text if len(text) <= _MAX_CELL else text[: _MAX_CELL - 3] + "..."


def write_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Write ``rows`` under ``headers`` to stdout, in columns two spaces apart."""
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [len(header) for header in headers]
    for row in cells:
        widths = [max(width, len(value)) for width, value in zip(widths, row, strict=True)]
    for row in [list(headers), *cells]:
        padded = (value.ljust(width) for value, width in zip(row, widths, strict=True))
        write_line("  ".join(padded).rstrip())
