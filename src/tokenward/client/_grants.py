"""The token endpoint's wire format, sans I/O: grant requests, their answers, challenges.

Requests (RFC 6749): the password grant (sec. 4.3.2), the refresh_token grant (sec. 6)
and token revocation (RFC 7009 sec. 2.1), form-encoded. A public client sends
``client_id`` in the form; a confidential one authenticates with HTTP Basic, the id and
secret each form-urlencoded before the Basic encoding (sec. 2.3.1). Secrets never go in
the form body.

Answers: sec. 5.1 for success (checked strictly: a JSON object, a bearer
``token_type``, an ``access_token`` that fits in a header, a positive ``expires_in`` if
present), sec. 5.2 for errors.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote_plus

import httpx

from tokenward.client._errors import TokenEndpointError

__all__ = [
    "ClientCredentials",
    "GrantError",
    "TokenAnswer",
    "invalid_token_challenge",
    "parse_error",
    "parse_token_answer",
    "retry_after",
]

# RFC 6750 sec. 2.1: the b64token of an Authorization: Bearer header.
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
# RFC 9110 sec. 11: auth-scheme, auth-param (token "=" token / quoted-string).
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_PARAM = re.compile(rf'\s*({_TOKEN})\s*=\s*({_TOKEN}|"(?:[^"\\]|\\.)*")\s*(?:,|$)')
_SCHEME = re.compile(rf"\s*,?\s*({_TOKEN})(?:\s+|$)")
_MAX_BODY = 64 * 1024
# RFC 9110 sec. 10.2.3: delay-seconds = 1*DIGIT (RFC 5234 DIGIT: %x30-39).
_DELAY_SECONDS = re.compile(r"[0-9]+")


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    """The OAuth client: its id, and its secret for a confidential client."""

    client_id: str
    secret: str | None = None

    def __repr__(self) -> str:
        return f"ClientCredentials(client_id={self.client_id!r})"

    def request(self, url: httpx.URL, form: dict[str, str]) -> httpx.Request:
        """A form POST to ``url`` authenticated as this client."""
        headers = {"Accept": "application/json", "Cache-Control": "no-store"}
        if self.secret is None:
            form = {**form, "client_id": self.client_id}
        else:
            pair = f"{quote_plus(self.client_id)}:{quote_plus(self.secret)}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        return httpx.Request("POST", url, data=form, headers=headers)


@dataclass(frozen=True, slots=True)
class TokenAnswer:
    """A successful token response (RFC 6749 sec. 5.1)."""

    access_token: str
    expires_in: float | None
    refresh_token: str | None
    scope: str | None

    def __repr__(self) -> str:
        return f"TokenAnswer(expires_in={self.expires_in!r}, scope={self.scope!r})"


@dataclass(frozen=True, slots=True)
class GrantError:
    """An error response (RFC 6749 sec. 5.2), or any other non-success answer."""

    status: int
    error: str | None
    description: str | None

    def exception(self, what: str) -> TokenEndpointError:
        """A :class:`TokenEndpointError` for this answer to ``what``."""
        code = self.error or "no error code"
        return TokenEndpointError(
            f"the token endpoint refused {what}: HTTP {self.status}, {code}",
            status=self.status,
            error=self.error,
            description=self.description,
        )


def _json_object(response: httpx.Response) -> Mapping[str, object] | None:
    content = response.content
    if len(content) > _MAX_BODY:
        return None
    try:
        document = json.loads(content)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return document if isinstance(document, dict) else None


def parse_error(response: httpx.Response) -> GrantError:
    """The RFC 6749 sec. 5.2 members of an error answer (None where absent or mistyped)."""
    body = _json_object(response) or {}
    error, description = body.get("error"), body.get("error_description")
    return GrantError(
        response.status_code,
        error if isinstance(error, str) else None,
        description if isinstance(description, str) else None,
    )


def parse_token_answer(response: httpx.Response) -> TokenAnswer:
    """The sec. 5.1 members of a 200 answer, or :class:`TokenEndpointError` if malformed."""
    body = _json_object(response)
    if body is None:
        raise _malformed(response, "the body is not a JSON object")
    access, token_type = body.get("access_token"), body.get("token_type")
    expires_in, refresh, scope = (
        body.get("expires_in"),
        body.get("refresh_token"),
        body.get("scope"),
    )
    if not isinstance(access, str) or not _B64TOKEN.fullmatch(access):
        raise _malformed(response, "access_token is missing or not a bearer token")
    # Sec. 7.1 and RFC 6750 sec. 4: the type is matched case-insensitively.
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise _malformed(response, "token_type is not Bearer")
    if expires_in is not None and not (
        isinstance(expires_in, int | float)
        and not isinstance(expires_in, bool)
        and math.isfinite(expires_in)
        and expires_in > 0
    ):
        raise _malformed(response, "expires_in is not a positive number")
    if refresh is not None and (not isinstance(refresh, str) or not refresh):
        raise _malformed(response, "refresh_token is not a string")
    if scope is not None and not isinstance(scope, str):
        raise _malformed(response, "scope is not a string")
    return TokenAnswer(access, None if expires_in is None else float(expires_in), refresh, scope)


def _malformed(response: httpx.Response, reason: str) -> TokenEndpointError:
    return TokenEndpointError(
        f"the token endpoint's answer is not an RFC 6749 token response: {reason}",
        status=response.status_code,
        error=None,
    )


def retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds when it is a number of seconds (RFC 9110 sec. 10.2.3);
    None when it is absent, an HTTP-date or malformed."""
    value = response.headers.get("retry-after", "").strip()
    # str.isdigit() also takes "²" or "٣", which float() then refuses.
    return float(value) if _DELAY_SECONDS.fullmatch(value) else None


def invalid_token_challenge(response: httpx.Response) -> bool:
    """True when the answer is 401 with a ``Bearer`` challenge saying ``invalid_token``.

    Only that says "this access token is no good, get another" (RFC 6750 sec. 3.1); a
    bare challenge means no token was sent, and ``insufficient_scope`` is a 403 that a
    new token of the same grant does not fix.
    """
    if response.status_code != 401:
        return False
    return any(
        _bearer_error(value) == "invalid_token"
        for value in response.headers.get_list("www-authenticate")
    )


def _bearer_error(header: str) -> str | None:
    """The ``error`` parameter of the Bearer challenge in one WWW-Authenticate value
    (which may list several challenges: ``Basic realm="x", Bearer error="..."``)."""
    scheme: str | None = None
    position = 0
    while position < len(header):
        param = _PARAM.match(header, position)
        if param is not None:
            if scheme == "bearer" and param.group(1).lower() == "error":
                return _unquote(param.group(2))
            position = param.end()
            continue
        start = _SCHEME.match(header, position)
        if start is None:
            return None  # not a challenge list this parser understands
        scheme = start.group(1).lower()
        position = start.end()
    return None


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value
