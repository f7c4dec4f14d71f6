"""Fixtures for the CLI tests: an in-process runner and ready-made key files."""

from __future__ import annotations

from pathlib import Path

import pytest

from tokenward.jose import Key

from .support import CLI, write_jwk


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> CLI:
    """Run ``tokenward`` in-process: ``cli("token", "verify", ..., stdin="...")``."""
    return CLI(capsys, monkeypatch)


@pytest.fixture(scope="session")
def es256_key() -> Key:
    """One ES256 private key (kid = its thumbprint) shared by the tests that need any key."""
    return Key.generate("ES256")


@pytest.fixture
def private_file(tmp_path: Path, es256_key: Key) -> str:
    """Path of a private ES256 JWK file."""
    return write_jwk(tmp_path / "signing.jwk", es256_key)


@pytest.fixture
def public_file(tmp_path: Path, es256_key: Key) -> str:
    """Path of the matching public JWK file."""
    return write_jwk(tmp_path / "signing.pub.jwk", es256_key.public_key(), private=False)
