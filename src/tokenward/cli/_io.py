"""Terminal and file I/O for the command-line tool: inputs, JSON, private files, stderr.

Everything the commands read or write goes through here, so that the rules hold in one
place: inputs are size-capped and decoded strictly, JSON is parsed without duplicate
members or ``NaN``, private keys are written with mode 0600 and never over an existing
file by accident, and nothing that looks like a token reaches stderr.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tokenward.errors import ConfigurationError, TokenwardError

__all__ = [
    "MAX_INPUT_SIZE",
    "STDIN",
    "UsageError",
    "note",
    "parse_json_object",
    "read_text",
    "read_token",
    "redact_tokens",
    "write_json",
    "write_line",
    "write_private_file",
]

STDIN = "-"
"""The file name that means standard input."""
MAX_INPUT_SIZE = 1024 * 1024
"""Cap on any one input (key file, JWKS, claims, token); more is refused, not truncated."""


class UsageError(ConfigurationError):
    """The command line or an input it names is unusable: exit status 2.

    The code is the command-line tool's own; it never reaches the HTTP layer.
    """

    code = "usage_error"


# -- reading --------------------------------------------------------------------------


def read_text(path: str, *, what: str) -> str:
    """Read UTF-8 text from ``path`` (``-`` for stdin), refusing more than 1 MiB."""
    name = "stdin" if path == STDIN else repr(path)
    try:
        if path == STDIN:
            if sys.stdin is None:
                # Python sets sys.stdin to None when the process starts with it closed.
                raise UsageError(f"cannot read {what}: stdin is closed")
            text = _read_capped(sys.stdin.read, what)
            if not _is_utf8(text):
                raise UsageError(f"{what} stdin is not UTF-8 text")
            return text
        with open(path, encoding="utf-8") as stream:
            return _read_capped(stream.read, what)
    except OSError as exc:
        raise UsageError(f"cannot read {what} {name}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{what} {name} is not UTF-8 text") from None


def _is_utf8(text: str) -> bool:
    # Python decodes stdin with errors="surrogateescape" under a C or POSIX locale and
    # in UTF-8 mode: bytes that are not UTF-8 arrive as lone surrogates instead of
    # failing the read, and would fail later, wherever the text is encoded again.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _read_capped(read: Callable[[int], str], what: str) -> str:
    text = read(MAX_INPUT_SIZE + 1)
    if len(text) > MAX_INPUT_SIZE:
        raise UsageError(f"{what} is larger than {MAX_INPUT_SIZE // 1024 // 1024} MiB")
    return text


def read_token(argument: str | None) -> str:
    """Return the token given on the command line, or read it from stdin.

    A token given as an argument is used exactly as given. One read from stdin has the
    surrounding whitespace removed, since ``echo`` and here-strings add a newline; a
    token with whitespace inside is still refused by the codec.
    """
    if argument is not None and argument != STDIN:
        return argument
    if _is_terminal():
        note("reading the token from stdin (paste it, then press Ctrl-D)")
    token = read_text(STDIN, what="token").strip()
    if not token:
        raise UsageError("no token given: pass TOKEN or pipe it on stdin")
    return token


def _is_terminal() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def parse_json_object(
    text: str, *, what: str, error: Callable[[str], TokenwardError] = UsageError
) -> dict[str, Any]:
    """Parse ``text`` as one JSON object, strictly; raise ``error(message)`` otherwise.

    Duplicate member names, ``NaN``/``Infinity`` and out-of-range numbers are refused,
    as the codec refuses them in tokens (RFC 7493 sec. 2.1, 2.3): a key file whose
    members could be read two ways is not a key file. Messages give the position of a
    syntax error, never the text, which may be secret.
    """

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(items)
        if len(obj) != len(items):
            raise error(f"{what} has duplicate member names")
        return obj

    def finite(number: str) -> float:
        value = float(number)
        if not math.isfinite(value):
            raise error(f"{what} has a number out of range")
        return value

    def constant(name: str) -> Any:
        raise error(f"{what} uses {name}, which JSON does not allow")

    try:
        value = json.loads(
            text, object_pairs_hook=pairs, parse_float=finite, parse_constant=constant
        )
    except json.JSONDecodeError as exc:
        raise error(
            f"{what} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
    except (ValueError, RecursionError):
        # int() digit limits and absurd nesting; the text itself is not repeated.
        raise error(f"{what} is not valid JSON") from None
    if type(value) is not dict:
        raise error(f"{what} must be a JSON object")
    return value


# -- writing --------------------------------------------------------------------------


def write_line(text: str) -> None:
    """Write one line to stdout."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def write_json(value: Any) -> None:
    """Write ``value`` to stdout as indented JSON.

    Non-ASCII text is written as is, unless stdout cannot encode it, in which case the
    output falls back to ``\\u`` escapes (still the same JSON) rather than failing.
    """
    try:
        write_line(json.dumps(value, indent=2, ensure_ascii=False))
    except UnicodeEncodeError:
        write_line(json.dumps(value, indent=2))


def note(text: str) -> None:
    """Write one line for the person at the terminal to stderr, with tokens redacted."""
    sys.stderr.write(redact_tokens(text) + "\n")
    sys.stderr.flush()


def write_private_file(path: str, text: str, *, force: bool) -> None:
    """Write ``text`` to a new file readable by its owner only (mode 0600).

    The file is created with ``O_CREAT | O_EXCL`` so that an existing file (or a symlink
    planted in its place) is never written through. With ``force``, an existing file is
    replaced by renaming a fresh 0600 file over it: truncating it in place would keep
    its old, possibly wider, permissions.
    """
    try:
        _create_exclusive(path, text)
    except FileExistsError:
        if not force:
            raise UsageError(f"{path!r} already exists; pass --force to replace it") from None
        _replace_private(path, text)
    except OSError as exc:
        raise UsageError(f"cannot write {path!r}: {exc.strerror or exc}") from None


def _replace_private(path: str, text: str) -> None:
    target = Path(path)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    try:
        _create_exclusive(str(temporary), text)
        os.replace(temporary, target)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise UsageError(f"cannot write {path!r}: {exc.strerror or exc}") from None


def _create_exclusive(path: str, text: str) -> None:
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as stream:
        stream.write(text)
        stream.flush()
        os.fsync(stream.fileno())


# -- redaction ------------------------------------------------------------------------

# A run of base64url segments joined by dots: a compact JWS or JWE, a part of one, or an
# innocent file name such as "key.v1.json"; _redact_run tells them apart.
_DOTTED_RUN = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]*)+|[A-Za-z0-9_-]{16,}")


def _is_jose_header(segment: str) -> bool:
    # '{"' encodes to "eyJ" or "eyI"; otherwise decode and look for a JSON object.
    if segment.startswith(("eyJ", "eyI")):
        return True
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        value = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError, RecursionError):
        return False
    return type(value) is dict


def redact_tokens(message: str) -> str:
    """Replace anything in ``message`` that looks like a JOSE token with a placeholder.

    Tokens are credentials; they must not land in terminal scrollback or CI logs just
    because one was passed where argparse did not expect it. A token glued to other
    text (``x.eyJ...``) is redacted from its header segment on.

    >>> redact_tokens("unrecognized arguments: eyJhbGciOiJIUzI1NiJ9.e30.c2ln")
    'unrecognized arguments: <token redacted>'
    """
    return _DOTTED_RUN.sub(_redact_run, message)


def _redact_run(match: re.Match[str]) -> str:
    segments = match.group().split(".")
    for index, segment in enumerate(segments):
        if segment and _is_jose_header(segment):
            return ".".join([*segments[:index], "<token redacted>"])
    return match.group()
