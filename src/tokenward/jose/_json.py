"""Strict JSON for JOSE headers and JWT claims (RFC 8259 with the profile's limits).

Python's ``json`` accepts ``NaN``/``Infinity``, keeps the last of duplicate members,
auto-detects UTF-16/32 when given bytes, turns ``1e400`` into ``inf`` and lets lone
surrogate escapes through. This module refuses each of those (SECURITY_PROFILE R9-R14):

* octets are decoded as strict UTF-8, and a byte order mark is refused;
* duplicate member names are refused (RFC 7515 sec. 4, RFC 7493 sec. 2.3);
* non-finite numbers and lone surrogates are refused (RFC 7493 sec. 2.1);
* nesting deeper than :data:`MAX_DEPTH` is refused by counting brackets before parsing,
  never by catching ``RecursionError``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from typing import Any

from tokenward.errors import MalformedTokenError

__all__ = ["MAX_DEPTH", "dumps", "loads_object"]

MAX_DEPTH = 64

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
# Strings (with escapes) or a bracket: enough to measure nesting outside strings.
_DEPTH_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise MalformedTokenError("JSON object has duplicate member names")
    return obj


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise MalformedTokenError("JSON number is out of range")
    return value


def _constant(name: str) -> Any:
    raise MalformedTokenError(f"JSON does not allow {name}")


_DECODER = json.JSONDecoder(
    object_pairs_hook=_pairs, parse_float=_finite_float, parse_constant=_constant
)
_decode = _DECODER.decode
# The C scanner behind _DECODER; used directly for the common case of input with no
# leading or trailing whitespace, which skips two regular-expression passes.
_scan_once: Callable[[str, int], tuple[Any, int]] = getattr(_DECODER, "scan_once")  # noqa: B009
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
# The C encoder behind _ENCODER, made once: JSONEncoder.encode builds a new one per call.
# No circular-reference markers: a cycle raises RecursionError, which dumps reports as a
# ValueError like every other unserialisable value.
_c_make_encoder: Callable[..., Callable[[Any, int], Sequence[str]]] | None = getattr(
    json.encoder, "c_make_encoder", None
)
_iterencode: Callable[[Any, int], Sequence[str]] | None = (
    _c_make_encoder(
        None, _ENCODER.default, json.encoder.encode_basestring, None, ":", ",", False, False, False
    )
    if _c_make_encoder is not None
    else None
)


def _depth_exceeds(text: str, limit: int) -> bool:
    depth = 0
    for match in _DEPTH_TOKENS.finditer(text):
        char = match.group()
        if char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


def _has_lone_surrogate(value: Any) -> bool:
    if type(value) is str:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if type(value) is dict:
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if type(value) is list:
        return any(_has_lone_surrogate(v) for v in value)
    return False


def loads_object(data: bytes, what: str) -> dict[str, Any]:
    """Parse ``data`` as a strict UTF-8 JSON object; ``what`` names it in errors."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedTokenError(f"{what} is not valid UTF-8") from None
    if text.startswith("\ufeff"):
        raise MalformedTokenError(f"{what} starts with a byte order mark")
    # Fast path: fewer than MAX_DEPTH brackets in all cannot nest deeper than that.
    if (text.count("{") + text.count("[")) > MAX_DEPTH and _depth_exceeds(text, MAX_DEPTH):
        raise MalformedTokenError(f"{what} nests deeper than {MAX_DEPTH} levels")
    try:
        try:
            value, end = _scan_once(text, 0)
        except StopIteration:
            end = -1
        if end != len(text):
            # Leading or trailing whitespace, trailing data, or no value at all: let the
            # full decoder accept the whitespace or raise the precise error.
            value = _decode(text)
    except MalformedTokenError as exc:
        raise MalformedTokenError(f"{what}: {exc.message}") from None
    except (ValueError, RecursionError):
        # ValueError covers JSONDecodeError and int() digit limits. RecursionError can
        # only come from pathological shapes the bracket count let through.
        raise MalformedTokenError(f"{what} is not valid JSON") from None
    if type(value) is not dict:
        raise MalformedTokenError(f"{what} is not a JSON object")
    if "\\u" in text and _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(value):
        raise MalformedTokenError(f"{what} contains a lone surrogate")
    return value


def dumps(value: Any) -> bytes:
    """Serialise ``value`` as compact UTF-8 JSON, refusing non-finite numbers."""
    try:
        if _iterencode is None:  # pragma: no cover - CPython always has the C encoder
            return _ENCODER.encode(value).encode("utf-8")
        return "".join(_iterencode(value, 0)).encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("value contains a lone surrogate") from None
    except RecursionError:
        raise ValueError("value is circular or nested too deeply") from None
