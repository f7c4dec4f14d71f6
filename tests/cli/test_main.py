"""The ``tokenward`` entry point: version, help, usage errors and their one-line form."""

from __future__ import annotations

import pytest

import tokenward
import tokenward.cli
from tokenward.jose import Key, jwt

from .support import CLI

COMMANDS = [
    ("keys", "generate"),
    ("keys", "public"),
    ("token", "encode"),
    ("token", "inspect"),
    ("token", "verify"),
]


def test_public_names_are_pinned() -> None:
    assert tokenward.cli.__all__ == ["main"]


def test_version_prints_the_package_version(cli: CLI) -> None:
    result = cli("--version")
    assert result.status == 0
    assert result.out == f"tokenward {tokenward.__version__}\n"


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        pytest.param([], "required: COMMAND", id="no-command"),
        pytest.param(["keys"], "required: COMMAND", id="group-without-command"),
        pytest.param(["launch"], "invalid choice: 'launch'", id="unknown-command"),
        pytest.param(
            ["keys", "generate", "--alg", "ES256", "--kidd", "k1"],
            "unrecognized arguments: --kidd k1 (see 'tokenward --help')",
            id="unrecognized-arguments-shown",
        ),
        pytest.param(["token", "verify", "--key", "k.jwk"], "--alg", id="missing-alg"),
        pytest.param(["token", "verify", "--alg", "ES256"], "--key", id="missing-key"),
        pytest.param(["keys", "generate", "--alg", "none"], "invalid choice", id="alg-none"),
        pytest.param(
            ["token", "verify", "--key", "a", "--jwks", "b", "--alg", "ES256"],
            "not allowed",
            id="key-and-jwks",
        ),
        pytest.param(
            ["token", "encode", "--key", "k", "--exp-in", "15x"],
            "invalid duration",
            id="bad-duration",
        ),
        pytest.param(
            ["token", "verify", "--key", "k", "--alg", "ES256", "--now", "nan"],
            "--now",
            id="nan-now",
        ),
    ],
)
def test_usage_errors_exit_2_with_one_line(cli: CLI, argv: list[str], fragment: str) -> None:
    result = cli(*argv)
    assert result.status == 2
    line = result.error_line()
    assert line.startswith("error: usage_error: ")
    assert fragment in line
    assert result.out == ""


def test_usage_error_names_the_help_to_read(cli: CLI) -> None:
    line = cli("token", "verify", "--key", "k.jwk").error_line()
    assert line.endswith("(see 'tokenward token verify --help')")


@pytest.mark.parametrize(("group", "command"), COMMANDS, ids=[" ".join(c) for c in COMMANDS])
def test_every_command_has_help_with_examples(cli: CLI, group: str, command: str) -> None:
    result = cli(group, command, "--help")
    assert result.status == 0
    assert f"usage: tokenward {group} {command}" in result.out
    assert f"examples:\n  tokenward {group} {command}" in result.out


def test_top_level_help_lists_groups_and_exit_statuses(cli: CLI) -> None:
    result = cli("--help")
    assert result.status == 0
    for group in ("keys", "token"):
        assert group in result.out
    assert "1 token refused, 2 usage or configuration error" in result.out


def test_stray_token_in_arguments_is_redacted_from_stderr(cli: CLI) -> None:
    token = jwt.encode({"sub": "ada"}, Key.generate("HS256"))
    result = cli("token", "verify", "--key", "k.jwk", "--alg", "HS256", "first", f"x.{token}")
    assert result.status == 2
    line = result.error_line()
    assert "x.<token redacted>" in line
    for segment in token.split("."):
        assert segment not in result.err


def test_token_given_as_command_is_redacted_from_stderr(cli: CLI) -> None:
    token = jwt.encode({"sub": "ada"}, Key.generate("HS256"))
    result = cli("token", token)
    assert result.status == 2
    assert token.split(".")[1] not in result.err
    assert "<token redacted>" in result.error_line()
