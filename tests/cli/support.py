"""Helpers for the CLI tests: run ``main`` in-process and collect what it printed."""

from __future__ import annotations

import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tokenward.cli import main
from tokenward.jose import Key

NOW = 1_800_000_000
"""The frozen time the tests issue and verify tokens at (2027-01-15)."""


@dataclass(frozen=True, slots=True)
class Result:
    """One run of the command line: exit status and the text written to each stream."""

    status: int
    out: str
    err: str

    def json(self) -> Any:
        """Parse stdout as JSON."""
        return json.loads(self.out)

    def error_line(self) -> str:
        """The single line written to stderr; fails the test if there is not exactly one."""
        lines = self.err.splitlines()
        assert len(lines) == 1, f"expected one line on stderr, got {self.err!r}"
        assert "Traceback" not in self.err
        return lines[0]


class CLI:
    """Calls ``tokenward.cli.main`` with the given arguments and optional stdin text."""

    def __init__(self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
        self._capsys = capsys
        self._monkeypatch = monkeypatch

    def __call__(self, *argv: str, stdin: str | None = None) -> Result:
        if stdin is not None:
            self._monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        self._capsys.readouterr()
        status = main(list(argv))
        captured = self._capsys.readouterr()
        return Result(status, captured.out, captured.err)


def write_jwk(path: Path, key: Key, *, private: bool = True) -> str:
    """Write ``key`` as a JWK file and return its path as a string for argv."""
    path.write_text(json.dumps(key.to_jwk(private=private)))
    return str(path)


def write_jwks(path: Path, *keys: Key) -> str:
    """Write the public halves of ``keys`` as a JWKS file and return its path."""
    path.write_text(json.dumps({"keys": [key.public_key().to_jwk() for key in keys]}))
    return str(path)
