"""The strict form parser: the same answers as ``parse_qsl``'s strict mode, on any input."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokenward.server._http import ApiError, parse_form


def reference(body: str) -> dict[str, str] | str:
    """RFC 6749 sec. 3.2 rules over parse_qsl(strict_parsing=True), as a result or a reason."""
    try:
        pairs = parse_qsl(
            body, keep_blank_values=True, strict_parsing=True, encoding="utf-8",
            errors="strict", max_num_fields=32,
        )  # fmt: skip
    except ValueError:
        return "not valid"
    form: dict[str, str] = {}
    seen: set[str] = set()
    for name, value in pairs:
        if not name:
            return "no name"
        if name in seen:
            return "repeated"
        seen.add(name)
        if value:
            form[name] = value
    return form


def parsed(body: str) -> dict[str, str] | str:
    try:
        return parse_form(body.encode())
    except ApiError as exc:
        refusal = (exc.status, exc.error, exc.description or "")
    status, error, description = refusal
    if (status, error) != (400, "invalid_request"):
        return f"unexpected {status} {error}"
    return next(r for r in ("not valid", "no name", "repeated") if r in description)


@given(st.text(alphabet="ab=&;%+41x", max_size=24))
def test_the_parser_agrees_with_parse_qsl(body: str) -> None:
    assert parsed(body) == reference(body)


@pytest.mark.parametrize(
    "body",
    [
        "grant_type=refresh_token&refresh_token=eyJ.eyJ.sig&client_id=web",
        "a=1&&b=2",
        "=1&b",
        "a=1&a=2",
        "a=b=c&d=",
        "a=%41&b=+",
        "&".join(f"f{i}=1" for i in range(32)),
        "&".join(f"f{i}=1" for i in range(33)),
    ],
)
def test_examples_agree_with_parse_qsl(body: str) -> None:
    assert parsed(body) == reference(body)
