"""HTTP plumbing: header lookup, body reading and the token response, against Starlette's
own answers and the JSON encoder's."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.requests import ClientDisconnect, Request
from starlette.types import Message

from tokenward.jose._json import dumps
from tokenward.server._http import header, json_response, read_form, send_json
from tokenward.server._token import token_body, token_json
from tokenward.service import TokenPair

FORM = "application/x-www-form-urlencoded"


def request(headers: list[tuple[bytes, bytes]], messages: list[Message] | None = None) -> Request:
    pending = list(messages or [])

    async def receive() -> Message:
        return pending.pop(0)

    return Request({"type": "http", "method": "POST", "headers": headers}, receive)


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param([], id="none"),
        pytest.param([(b"content-type", FORM.encode())], id="one"),
        pytest.param([(b"accept", b"a"), (b"accept", b"b")], id="repeated-first-wins"),
        pytest.param([(b"user-agent", "caf\xe9".encode("latin-1"))], id="latin-1"),
        pytest.param([(b"Accept", b"upper")], id="raw-name-not-lowered"),
    ],
)
@pytest.mark.parametrize("name", ["accept", "content-type", "user-agent", "authorization"])
def test_header_answers_as_starlette_headers_get(
    headers: list[tuple[bytes, bytes]], name: str
) -> None:
    assert header(request(headers), name.encode()) == request(headers).headers.get(name)


def body_messages(chunks: list[bytes]) -> list[Message]:
    last = len(chunks) - 1
    return [
        {"type": "http.request", "body": chunk, "more_body": i < last}
        for i, chunk in enumerate(chunks)
    ]


@pytest.mark.parametrize(
    "chunks",
    [
        pytest.param([b"grant_type=refresh_token&refresh_token=a.b.c"], id="one-message"),
        pytest.param([b"grant_type=refr", b"", b"esh_token&refresh_token=a.b.c"], id="split"),
        pytest.param([b"grant_type=refresh_token&refresh_token=a.b.c", b""], id="empty-last"),
    ],
)
async def test_a_body_in_several_messages_reads_as_one(chunks: list[bytes]) -> None:
    form = await read_form(request([(b"content-type", FORM.encode())], body_messages(chunks)))
    assert form == {"grant_type": "refresh_token", "refresh_token": "a.b.c"}


async def test_a_disconnect_while_reading_is_a_client_disconnect() -> None:
    messages: list[Message] = [
        {"type": "http.request", "body": b"grant_type=", "more_body": True},
        {"type": "http.disconnect"},
    ]
    with pytest.raises(ClientDisconnect):
        await read_form(request([(b"content-type", FORM.encode())], messages))


JWS = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhZGEifQ.c2lnbmF0dXJl-_"


def pair(**fields: Any) -> TokenPair:
    values: dict[str, Any] = {
        "access_token": JWS,
        "refresh_token": JWS + "x",
        "expires_in": 900,
        "scope": "read write",
        "sid": "s-1",
        "refresh_expires_at": 1_700_000_000,
    }
    return TokenPair(**{**values, **fields})


def test_the_token_json_of_compact_tokens_is_the_encoders() -> None:
    assert token_json(pair()) == dumps(token_body(pair()))


@given(
    access=st.text(),
    refresh=st.text(alphabet=st.characters(max_codepoint=0x7F)),
    scope=st.text(alphabet=st.characters(max_codepoint=0x7F)),
    token_type=st.sampled_from(["Bearer", 'Be"arer', "Bearer\\", "Bear\x7fer", "Bear\x1fer"]),
    expires_in=st.one_of(st.integers(), st.booleans()),
)
def test_the_token_json_of_any_pair_is_the_encoders(
    access: str, refresh: str, scope: str, token_type: str, expires_in: int
) -> None:
    subject = pair(
        access_token=access, refresh_token=refresh, scope=scope, token_type=token_type,
        expires_in=expires_in,
    )  # fmt: skip
    assert token_json(subject) == dumps(token_body(subject))


@pytest.mark.parametrize("status", [200, 201, 400])
async def test_send_json_sends_the_messages_of_json_response(status: int) -> None:
    document = {"access_token": JWS, "expires_in": 900}
    expected: list[Message] = []
    sent: list[Message] = []

    async def into(messages: list[Message], message: Message) -> None:
        messages.append(message)

    async def receive() -> Message:
        raise AssertionError("nothing is read")

    scope = {"type": "http", "method": "POST", "headers": []}
    await json_response(document, status)(scope, receive, lambda m: into(expected, m))
    await send_json(lambda m: into(sent, m), dumps(document), status)
    assert sent == expected
