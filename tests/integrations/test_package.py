"""The package's public surface, and that importing it pulls in no framework."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest

import tokenward.integrations
from tokenward.errors import ConfigurationError
from tokenward.service import RemoteJWKS, Verifier


def test_public_names_are_pinned() -> None:
    assert tokenward.integrations.__all__ == [
        "BackgroundKeyRefresh",
        "SlidingConfig",
        "TokenwardMiddleware",
    ]


def test_importing_the_package_imports_no_framework() -> None:
    code = (
        "import sys, tokenward.integrations, tokenward.integrations.asgi;"
        "loaded = {'fastapi', 'flask', 'django', 'starlette', 'litestar'} & set(sys.modules);"
        "print(sorted(loaded))"
    )
    result = subprocess.run(  # noqa: S603 (this interpreter, a fixed program)
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


def _middleware(verifier: Verifier) -> object:
    async def app(scope: object, receive: object, send: object) -> None:
        pass

    return tokenward.integrations.TokenwardMiddleware(app, verifier)


def _fastapi(verifier: Verifier) -> object:
    from tokenward.integrations.fastapi import require_token

    return require_token(verifier)


def _flask(verifier: Verifier) -> object:
    from flask import Flask

    from tokenward.integrations.flask import Tokenward

    return Tokenward(Flask(__name__), verifier)


def _refresher(verifier: Verifier) -> object:
    return tokenward.integrations.BackgroundKeyRefresh(verifier.keys)


@pytest.mark.parametrize(
    "set_up",
    [_middleware, _fastapi, _flask, _refresher],
    ids=["asgi", "fastapi", "flask", "background-refresh"],
)
def test_a_remote_jwks_without_httpx_is_refused_when_set_up(
    set_up: Callable[[Verifier], object], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without this, a missing httpx showed only on the first fetch: a 500 on every
    # request (ASGI), or a start-up that waited out its timeout (Flask, Django).
    source = RemoteJWKS("https://auth.test/jwks")
    verifier = Verifier(source, issuer="https://auth.test", audience="api")
    monkeypatch.setitem(sys.modules, "httpx", None)  # As if it were not installed.
    with pytest.raises(ConfigurationError, match=r"tokenward\[client\]"):
        set_up(verifier)
