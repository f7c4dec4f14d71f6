"""The audit log: security events on the ``tokenward.audit`` logger, as JSON lines.

Events carry identifiers (``sub``, ``sid``, ``client_id``, the client address) and
outcomes, never a token, a password, a client secret or key material. A failed login
does not log the username either: people type passwords into the username field.

The service layer logs its own events (``session_created``, ``refresh_reuse_detected``,
``session_revoked``, ``login_failed`` ...) to the same logger; the server adds the HTTP
view (client, address, endpoint). :func:`configure_logging` installs one handler that
writes every ``tokenward`` record as one JSON object per line::

    {"ts": "2027-01-15T08:00:00.000Z", "level": "WARNING", "logger": "tokenward.audit",
     "event": "refresh_reuse_detected", "sid": "...", "sub": "u-..."}
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, TextIO

__all__ = ["JSONLinesFormatter", "audit", "configure_logging"]

_logger = logging.getLogger("tokenward.audit")

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}


def audit(event: str, *, level: int = logging.INFO, **fields: Any) -> None:
    """Log one security event with structured fields (identifiers only, never secrets)."""
    if _logger.isEnabledFor(level):
        _logger.log(level, event, extra=fields)


class JSONLinesFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, event, then the ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as a single JSON line."""
        seconds = time.gmtime(record.created)
        document: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", seconds) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in document:
                document[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            # The exception type only: messages and tracebacks stay out of the audit trail.
            document["exc_type"] = record.exc_info[0].__name__
        return json.dumps(document, default=str, separators=(",", ":"))


_HANDLER_NAME = "tokenward-json-lines"


def configure_logging(level: str = "INFO", stream: TextIO | None = None) -> logging.Handler:
    """Send ``tokenward.*`` records at ``level`` and above to ``stream`` (stderr) as JSON lines.

    Idempotent: calling it again replaces the handler it installed before. Call it from
    the process entry point (``tokenward serve`` does); ``create_app`` leaves logging alone.
    """
    root = logging.getLogger("tokenward")
    for handler in list(root.handlers):
        if handler.get_name() == _HANDLER_NAME:
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JSONLinesFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    return handler
