"""HTTP plumbing shared by the endpoints: bounded bodies, strict forms and JSON, errors.

Bodies are read with a hard cap before anything parses them. Forms are parsed strictly
(RFC 6749 sec. 3.2: a parameter sent twice is an error, an empty one counts as absent),
with :func:`urllib.parse.parse_qsl` rather than a multipart library: the token endpoints
only ever receive ``application/x-www-form-urlencoded``.

Every error leaves the server as :class:`ApiError`, rendered as a small JSON object
(``{"error": code, "error_description": text}``, the RFC 6749 sec. 5.2 shape) with
``Cache-Control: no-store``. Descriptions are fixed texts: never a token or a password.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import ClientDisconnect, HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.types import Send

from tokenward.jose._json import dumps
from tokenward.service._httpcache import parse_digits

__all__ = [
    "COOKIE_PATH",
    "INTROSPECT_PATH",
    "JWKS_PATH",
    "MAX_BODY_BYTES",
    "METADATA_PATH",
    "NO_STORE",
    "REVOKE_PATH",
    "TOKEN_PATH",
    "ApiError",
    "error_response",
    "header",
    "json_response",
    "parse_form",
    "read_form",
    "read_json",
    "required",
    "send_json",
    "text_field",
]

TOKEN_PATH = "/oauth/token"
REVOKE_PATH = "/oauth/revoke"
INTROSPECT_PATH = "/oauth/introspect"
JWKS_PATH = "/.well-known/jwks.json"
METADATA_PATH = "/.well-known/oauth-authorization-server"
COOKIE_PATH = "/cookie"

MAX_BODY_BYTES = 16 * 1024
"""Largest request body accepted: a form with a refresh token and a password fits in 4 KiB."""

_MAX_FIELDS = 32
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
"""RFC 6749 sec. 5.1: responses carrying tokens or credentials must not be cached."""


class ApiError(Exception):
    """An error answer: HTTP status, an error code, a fixed description, extra headers."""

    def __init__(
        self,
        status: int,
        error: str,
        description: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.description = description
        self.headers = dict(headers or {})

    def response(self) -> Response:
        """This error as a JSON response."""
        return error_response(self.status, self.error, self.description, headers=self.headers)


class _JSONResponse(JSONResponse):
    """Starlette's ``JSONResponse`` (compact, UTF-8, no NaN), rendered by an encoder made
    once (``json.dumps`` with arguments builds a new encoder for every response)."""

    def render(self, content: Any) -> bytes:
        return dumps(content)


def json_response(
    content: Any, status: int = 200, *, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """A JSON response that no cache keeps (every answer here is per-caller or secret)."""
    return _JSONResponse(content, status, headers={**NO_STORE, **headers} if headers else NO_STORE)


_NO_STORE_RAW = [(name.lower().encode(), value.encode()) for name, value in NO_STORE.items()]
_JSON_TYPE = (b"content-type", b"application/json")


async def send_json(send: Send, body: bytes, status: int = 200) -> None:
    """Send ``body``, a rendered JSON document, as :func:`json_response` would: the same
    ASGI messages, without a response object. For endpoints written as ASGI applications.
    """
    headers = [*_NO_STORE_RAW, (b"content-length", b"%d" % len(body)), _JSON_TYPE]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def error_response(
    status: int,
    error: str,
    description: str | None = None,
    *,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """``{"error": ..., "error_description": ...}`` with ``status`` (RFC 6749 sec. 5.2)."""
    body = {"error": error}
    if description:
        body["error_description"] = description
    return json_response(body, status, headers=headers)


def _invalid(description: str) -> ApiError:
    return ApiError(400, "invalid_request", description)


def header(connection: HTTPConnection, name: bytes) -> str | None:
    """The first value of the header ``name`` (lower case), or None: what
    ``connection.headers.get(name)`` answers, without its case-insensitive mapping's
    per-lookup work (a key lowered and encoded, and a ``KeyError`` for an absent header).

    >>> from starlette.requests import Request
    >>> header(Request({"type": "http", "headers": [(b"accept", b"*/*")]}), b"accept")
    '*/*'
    """
    for key, value in connection.headers.raw:
        if key == name:
            return value.decode("latin-1")
    return None


def _media_type(request: Request) -> str:
    return (header(request, b"content-type") or "").split(";", 1)[0].strip().lower()


async def _read_body(request: Request) -> bytes:
    # ASCII digits only (RFC 9110 sec. 8.6); a malformed value is ignored, and the cap
    # applies while reading.
    declared = parse_digits(header(request, b"content-length") or "", cap=MAX_BODY_BYTES + 1)
    if declared is not None and declared > MAX_BODY_BYTES:
        raise ApiError(413, "invalid_request", "the request body is too large")
    # The ASGI messages as Request.stream() reads them, without an async generator (and
    # the event loop's bookkeeping of one) per request. Nothing reads this body again.
    receive = request.receive
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        kind = message["type"]
        if kind == "http.request":
            chunk = message.get("body", b"")
            more = message.get("more_body", False)
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise ApiError(413, "invalid_request", "the request body is too large")
            chunks.append(chunk)
        elif kind == "http.disconnect":
            raise ClientDisconnect()
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def parse_form(body: bytes) -> dict[str, str]:
    """Strictly parse a urlencoded body; repeated names are refused, empty values dropped.

    >>> parse_form(b"grant_type=password&scope=")
    {'grant_type': 'password'}
    """
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        raise _invalid("the form body must be ASCII (percent-encode other octets)") from None
    if not text:
        return {}
    pairs: list[tuple[str, str]]
    fields = text.split("&")
    if len(fields) <= _MAX_FIELDS and "%" not in text and "+" not in text:
        # Nothing to decode (a refresh form: base64url tokens and plain names): the
        # same pairs parse_qsl gives, without its per-field unquoting.
        parts = [field.partition("=") for field in fields]
        if not all(equals for _, equals, _ in parts):  # as parse_qsl(strict_parsing=True)
            raise _invalid("the form body is not valid application/x-www-form-urlencoded")
        pairs = [(name, value) for name, _, value in parts]
    else:
        try:
            pairs = parse_qsl(
                text,
                keep_blank_values=True,
                strict_parsing=True,
                encoding="utf-8",
                errors="strict",
                max_num_fields=_MAX_FIELDS,
            )
        except ValueError:
            raise _invalid("the form body is not valid application/x-www-form-urlencoded") from None
    form: dict[str, str] = {}
    seen: set[str] = set()
    for name, value in pairs:
        if not name:
            raise _invalid("a form parameter has no name")
        # RFC 6749 sec. 3.2: "Request and response parameters MUST NOT be included more
        # than once"; a repeated name could otherwise be read differently by two parsers.
        if name in seen:
            raise _invalid(f"parameter {name!r} is repeated")
        seen.add(name)
        # Same section: parameters sent without a value are treated as omitted.
        if value:
            form[name] = value
    return form


async def read_form(request: Request) -> dict[str, str]:
    """Read and strictly parse an ``application/x-www-form-urlencoded`` body."""
    if _media_type(request) != "application/x-www-form-urlencoded":
        raise _invalid("the body must be application/x-www-form-urlencoded")
    return parse_form(await _read_body(request))


async def read_json(request: Request) -> dict[str, Any]:
    """Read a JSON object body (``application/json``), capped like forms."""
    if _media_type(request) != "application/json":
        raise _invalid("the body must be application/json")
    body = await _read_body(request)
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise _invalid("the body is not valid JSON") from None
    if not isinstance(document, dict):
        raise _invalid("the body must be a JSON object")
    return document


def text_field(document: Mapping[str, Any], name: str, *, required: bool = True) -> str | None:
    """A string member of a JSON body; ``invalid_request`` when absent (if required) or mistyped."""
    value = document.get(name)
    if value is None:
        if required:
            raise _invalid(f"{name!r} is required")
        return None
    if not isinstance(value, str):
        raise _invalid(f"{name!r} must be a string")
    return value


def required(form: Mapping[str, str], name: str) -> str:
    """A form parameter that must be present (RFC 6749 ``invalid_request`` otherwise)."""
    value = form.get(name)
    if value is None:
        raise _invalid(f"the {name!r} parameter is required")
    return value
