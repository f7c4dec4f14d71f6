"""Helpers for the server-side command tests: a store in tmp_path, fast argon2, logins.

The commands under test read their settings from the environment like the server does,
so each test gets an environment holding only what it sets: the test-service variables
survive, every other ``TOKENWARD_*`` variable is removed.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from tokenward.cli._runtime import Runtime, open_runtime
from tokenward.server import load_settings
from tokenward.service import Client, TokenPair

from .support import Result

T = TypeVar("T")

PASSWORD = "correct horse battery staple"
"""The password the tests give their users (long enough for the password policy)."""

FAST_ARGON2 = {
    "TOKENWARD_ARGON2_TIME_COST": "1",
    "TOKENWARD_ARGON2_MEMORY_COST": "8",
    "TOKENWARD_ARGON2_PARALLELISM": "1",
}
_KEEP = ("TOKENWARD_TEST_", "TOKENWARD_REQUIRE_SERVICES")


def isolate_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove the caller's ``TOKENWARD_*`` settings and set fast argon2 parameters."""
    for name in list(os.environ):
        if name.startswith("TOKENWARD_") and not name.startswith(_KEEP):
            monkeypatch.delenv(name)
    for name, value in FAST_ARGON2.items():
        monkeypatch.setenv(name, value)


def sqlite_url(tmp_path: Path) -> str:
    """A store URL naming a new SQLite file in ``tmp_path`` (absolute: four slashes)."""
    return f"sqlite:///{tmp_path / 'auth.db'}"


def on_store(url: str, action: Callable[[Runtime], Awaitable[T]]) -> T:
    """Run ``action`` on the store at ``url``, built as the commands build it."""
    settings = load_settings(None, env=os.environ, overrides={"store": url})

    async def body() -> T:
        async with open_runtime(settings) as runtime:
            return await action(runtime)

    return asyncio.run(body())


def login(url: str, username: str, password: str = PASSWORD, *, agent: str = "pytest") -> TokenPair:
    """Log ``username`` in on the store at ``url``, as the token endpoint would."""
    client = Client("default", user_agent=agent, ip="127.0.0.1")
    return on_store(url, lambda runtime: runtime.users.login(username, password, client=client))


def refresh(url: str, refresh_token: str) -> TokenPair:
    """Exchange ``refresh_token`` on the store at ``url``; raises what the service raises."""
    return on_store(url, lambda runtime: runtime.tokens.refresh(refresh_token))


def ok(result: Result) -> Result:
    """Check that a command succeeded, showing its stderr if it did not."""
    assert result.status == 0, result.err
    return result
