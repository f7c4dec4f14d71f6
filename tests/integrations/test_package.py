"""The package's public surface, and that importing it pulls in no framework."""

from __future__ import annotations

import subprocess
import sys

import tokenward.integrations


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
