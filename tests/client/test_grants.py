"""The token endpoint's wire format: challenges, token answers, client authentication.

These are values in, values out (``httpx.Response`` objects built from bytes), for the
cases the real server never produces: other servers' challenge lists and malformed
answers.
"""

from __future__ import annotations

import base64
from urllib.parse import parse_qs

import httpx
import pytest

import tokenward.client
from tokenward.client import TokenEndpointError
from tokenward.client._grants import (
    ClientCredentials,
    invalid_token_challenge,
    parse_token_answer,
    retry_after,
)


def refused(*challenges: str, status: int = 401) -> httpx.Response:
    return httpx.Response(status, headers=[("WWW-Authenticate", c) for c in challenges])


@pytest.mark.parametrize(
    ("challenges", "expected"),
    [
        (['Bearer realm="tokenward", error="invalid_token", error_description="expired"'], True),
        (["Bearer error=invalid_token"], True),
        (['bearer ERROR="invalid_token"'], True),
        (['Basic realm="x", Bearer error="invalid_token"'], True),
        (['Bearer error="invalid_token", Basic realm="x"'], True),
        (['Newauth realm="apps", type=1, title="Login to \\"apps\\"", '
          'Bearer error="invalid_token"'], True),
        (['Basic realm="x"', 'Bearer realm="api", error="invalid_token"'], True),
        (['Bearer realm="tokenward"'], False),
        (["Bearer"], False),
        (['Bearer error="insufficient_scope", scope="admin"'], False),
        (['Basic error="invalid_token"'], False),
        (['Bearer realm="a, error=\\"invalid_token\\""'], False),
        (['Basic realm="x", error="invalid_token"'], False),
        ([], False),
        (["%%% garbage"], False),
    ],
    ids=["tokenward", "token-form", "case", "second-challenge", "first-challenge",
         "rfc9110-newauth", "two-headers", "bare", "no-params", "insufficient-scope",
         "basic-only", "inside-a-quoted-string", "param-of-basic", "no-header", "garbage"],
)  # fmt: skip
def test_invalid_token_challenge(challenges: list[str], expected: bool) -> None:
    assert invalid_token_challenge(refused(*challenges)) is expected


def test_only_a_401_is_a_refused_token() -> None:
    assert not invalid_token_challenge(refused('Bearer error="invalid_token"', status=403))
    assert not invalid_token_challenge(refused('Bearer error="invalid_token"', status=400))


GOOD = b'{"access_token": "a.b.c", "token_type": "Bearer", "expires_in": 900}'


def test_a_minimal_answer_parses() -> None:
    answer = parse_token_answer(httpx.Response(200, content=GOOD))
    assert (answer.access_token, answer.expires_in) == ("a.b.c", 900.0)
    assert (answer.refresh_token, answer.scope) == (None, None)
    lower = b'{"access_token": "a.b.c", "token_type": "bearer"}'
    assert parse_token_answer(httpx.Response(200, content=lower)).expires_in is None
    assert "a.b.c" not in repr(answer)


@pytest.mark.parametrize(
    "body",
    [
        b"<html>login</html>",
        b'["a.b.c"]',
        b'{"token_type": "Bearer"}',
        b'{"access_token": "a b", "token_type": "Bearer"}',
        b'{"access_token": "a.b.c\\r\\nX-Injected: 1", "token_type": "Bearer"}',
        b'{"access_token": 5, "token_type": "Bearer"}',
        b'{"access_token": "a.b.c", "token_type": "MAC"}',
        b'{"access_token": "a.b.c"}',
        b'{"access_token": "a.b.c", "token_type": "Bearer", "expires_in": "900"}',
        b'{"access_token": "a.b.c", "token_type": "Bearer", "expires_in": 0}',
        b'{"access_token": "a.b.c", "token_type": "Bearer", "expires_in": true}',
        b'{"access_token": "a.b.c", "token_type": "Bearer", "expires_in": 1e999}',
        b'{"access_token": "a.b.c", "token_type": "Bearer", "refresh_token": 7}',
        b'{"access_token": "a.b.c", "token_type": "Bearer", "refresh_token": ""}',
        b'{"access_token": "a.b.c", "token_type": "Bearer", "scope": ["read"]}',
    ],
    ids=["html", "array", "no-access-token", "space", "header-injection", "number",
         "mac-type", "no-type", "string-expiry", "zero-expiry", "bool-expiry",
         "infinite-expiry", "numeric-refresh", "empty-refresh", "list-scope"],
)  # fmt: skip
def test_a_malformed_answer_is_refused(body: bytes) -> None:
    with pytest.raises(TokenEndpointError, match="not an RFC 6749 token response") as caught:
        parse_token_answer(httpx.Response(200, content=body))
    assert caught.value.status == 200
    assert "a.b.c" not in str(caught.value)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (b"7", 7.0),
        (b" 120 ", 120.0),
        (b"0", 0.0),
        (None, None),
        (b"", None),
        (b"\xb2", None),
        ("\u0663".encode(), None),
        (b"-1", None),
        (b"1.5", None),
        (b"1e3", None),
        (b"Wed, 21 Oct 2015 07:28:00 GMT", None),
    ],
    ids=["seconds", "spaces", "zero", "absent", "empty", "latin1-superscript-two",
         "arabic-indic-three", "negative", "fraction", "exponent", "http-date"],
)  # fmt: skip
def test_retry_after_is_ascii_delay_seconds_or_absent(
    value: bytes | None, seconds: float | None
) -> None:
    # RFC 9110 sec. 10.2.3: delay-seconds is 1*DIGIT, ASCII digits. str.isdigit() also
    # takes "\xb2" and "\u0663"; float() refuses the first and reads the second as 3.
    headers = [] if value is None else [(b"Retry-After", value)]
    assert retry_after(httpx.Response(503, headers=headers)) == seconds


def test_a_public_client_sends_its_id_in_the_form() -> None:
    request = ClientCredentials("web").request(httpx.URL("https://a/t"), {"grant_type": "x"})
    assert "Authorization" not in request.headers
    assert parse_qs(request.content.decode()) == {"grant_type": ["x"], "client_id": ["web"]}
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"


def test_a_confidential_client_uses_basic_with_form_encoding() -> None:
    # RFC 6749 sec. 2.3.1: id and secret are form-urlencoded, then Basic-encoded.
    client = ClientCredentials("svc:1", "p@ss word/+")
    request = client.request(httpx.URL("https://a/t"), {"grant_type": "x"})
    scheme, _, value = request.headers["Authorization"].partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(value).decode() == "svc%3A1:p%40ss+word%2F%2B"
    assert parse_qs(request.content.decode()) == {"grant_type": ["x"]}  # no secret in the form
    assert "p@ss" not in repr(client)


def test_the_public_api_is_pinned() -> None:
    assert tokenward.client.__all__ == [
        "AsyncTokenwardAuth",
        "ClientError",
        "FileTokenStorage",
        "LoginFailedError",
        "LoginRequiredError",
        "MemoryTokenStorage",
        "StoredToken",
        "TokenEndpointError",
        "TokenStorage",
        "TokenStorageError",
        "TokenwardAuth",
    ]
    assert tokenward.client.__all__ == sorted(tokenward.client.__all__)
    for name in tokenward.client.__all__:
        assert getattr(tokenward.client, name).__module__.startswith("tokenward.client")


def test_error_codes_are_stable() -> None:
    codes = {
        name: getattr(tokenward.client, name).code
        for name in tokenward.client.__all__
        if name.endswith("Error")
    }
    assert codes == {
        "ClientError": "client_error",
        "LoginFailedError": "login_failed",
        "LoginRequiredError": "login_required",
        "TokenEndpointError": "token_endpoint_error",
        "TokenStorageError": "token_storage_error",
    }
