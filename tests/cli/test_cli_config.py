"""A config file the loader cannot use is one error line and exit status 2, never a
traceback, whatever command reads it."""

from __future__ import annotations

from pathlib import Path

import pytest

from .server_support import isolate_environment
from .support import CLI


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate_environment(monkeypatch)
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        pytest.param(
            b"port = inf\n", "port (from config file {path}): inf is not a valid int", id="port-inf"
        ),
        pytest.param(
            b"tokenward = 1\n", "config file {path}: tokenward must be a table", id="not-a-table"
        ),
        pytest.param(b'store = "\xff"\n', "config file {path}: line 1 is not UTF-8", id="not-utf8"),
    ],
)
@pytest.mark.parametrize("command", [("keys", "list"), ("serve",)], ids=" ".join)
def test_an_unusable_config_file_exits_2_with_one_line(
    cli: CLI, tmp_path: Path, content: bytes, reason: str, command: tuple[str, ...]
) -> None:
    path = tmp_path / "tokenward.toml"
    path.write_bytes(content)
    result = cli(*command, "--config", str(path))
    assert result.status == 2
    assert result.error_line() == "error: configuration_error: " + reason.format(path=path)
    assert not (tmp_path / "tokenward.db").exists()


def test_a_misspelt_variable_stops_the_command(
    cli: CLI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOKENWARD_ACESS_LIFETIME", "60")
    result = cli("keys", "list")
    assert result.status == 2
    assert result.error_line() == (
        "error: configuration_error: environment TOKENWARD_ACESS_LIFETIME: not a tokenward "
        "setting (did you mean TOKENWARD_ACCESS_LIFETIME?)"
    )
