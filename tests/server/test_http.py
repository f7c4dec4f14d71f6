"""HTTP plumbing: header lookup and body reading, against Starlette's own answers."""

from __future__ import annotations

import pytest
from starlette.requests import ClientDisconnect, Request
from starlette.types import Message

from tokenward.server._http import header, read_form

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
