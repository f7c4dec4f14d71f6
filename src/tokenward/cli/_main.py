"""The ``tokenward`` parser and entry point: dispatch, exit statuses and error lines.

Errors leave the tool as one line on stderr, ``error: <code>: <message>``, where
``code`` is the stable :attr:`~tokenward.errors.TokenwardError.code` (or
``usage_error`` for the command line itself), never as a traceback. A refused token or
a refused server-side operation exits with 1, an unavailable store with 3, anything
else that is wrong with 2; see :mod:`tokenward.cli._commands`.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from tokenward import __version__
from tokenward.cli import _bench, _keys, _serve, _sessions, _token, _users
from tokenward.cli._commands import (
    EXIT_REFUSED,
    EXIT_STORE,
    EXIT_TOKEN,
    EXIT_USAGE,
    SECRET_ARGUMENTS,
    Handler,
    RefusedError,
    Subparsers,
)
from tokenward.cli._io import UsageError, note
from tokenward.errors import InvalidTokenError, TokenwardError

__all__ = ["COMMAND_GROUPS", "build_parser", "main"]

COMMAND_GROUPS: tuple[Callable[[Subparsers], None], ...] = (
    _serve.register,
    _users.register,
    _sessions.register,
    _keys.register,
    _token.register,
    _bench.register,
)
"""Every command group's ``register``, in the order ``--help`` lists them."""


class _Exit(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Raised instead of ``sys.exit`` so that ``main`` returns its status."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` that raises instead of printing usage and exiting.

    Sub-parsers are built from the same class, so every level behaves alike. A command
    added with ``secret_arguments`` reports its usage errors without the values typed.
    """

    def error(self, message: str) -> NoReturn:
        if self.get_default(SECRET_ARGUMENTS):
            message = _without_values(message)
        raise UsageError(f"{message} (see '{self.prog} --help')")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            sys.stderr.write(message)
        raise _Exit(status)


_NOT_REPEATED = "not repeated in case of a password"


def _without_values(message: str) -> str:
    """An argparse error message with what was typed on the command line left out.

    >>> _without_values("argument --password-stdin: ignored explicit argument 'hunter2'")
    'argument --password-stdin: ignored explicit argument, not repeated in case of a password'
    """
    # These two quote the arguments as typed; every other message quotes values with
    # repr() and names options and arguments by their declared names.
    for unquoted in ("unrecognized arguments", "ambiguous option"):
        if message.startswith(unquoted):
            return f"{unquoted}, {_NOT_REPEATED}"
    head = re.split("['\"]", message, maxsplit=1)[0]
    return message if head == message else f"{head.rstrip(' :')}, {_NOT_REPEATED}"


def build_parser() -> argparse.ArgumentParser:
    """Build the full ``tokenward`` parser, with every command group registered."""
    # Typed as the base class: sub-parsers are _Parser at run time (argparse builds them
    # from type(parser)), while command groups register against the standard type.
    parser: argparse.ArgumentParser = _Parser(
        prog="tokenward",
        description="tokenward: the auth server, its users, sessions and keys; JWTs.",
        epilog=(
            "exit status: 0 success, 1 token refused, 2 usage or configuration error,\n"
            "3 store unavailable; 1 also when a user, session or key command is refused.\n"
            "Run 'tokenward COMMAND --help' for a command's options and examples."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"tokenward {__version__}")
    commands = parser.add_subparsers(
        title="commands", dest="command", metavar="COMMAND", required=True
    )
    for register in COMMAND_GROUPS:
        register(commands)
    return parser


def _status(error: TokenwardError) -> int:
    """The exit status for ``error``: 1 refused, 3 store failed, 2 anything else."""
    if isinstance(error, InvalidTokenError):
        return EXIT_TOKEN
    if isinstance(error, RefusedError):
        return EXIT_REFUSED
    # A store error can only exist once its module is imported; looking it up here
    # keeps the store backends (and asyncio) out of the token commands' start-up.
    stores = sys.modules.get("tokenward.stores.base")
    if stores is not None:
        if isinstance(error, stores.UserExistsError):
            return EXIT_REFUSED
        if isinstance(error, stores.StoreError):
            return EXIT_STORE
    return EXIT_USAGE


def _fail(error: TokenwardError, status: int) -> int:
    # One line, whatever the message holds; redaction happens in note().
    message = " ".join(error.message.split())
    note(f"error: {error.code}: {message}")
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``tokenward`` command line and return its exit status.

    ``argv`` defaults to ``sys.argv[1:]``. Nothing is raised for bad input: usage and
    configuration errors return 2, refused tokens and operations 1, an unavailable store
    3, each with one line on stderr.

    ::

        status = main(["token", "verify", "--key", "signing.pub.jwk", "--alg", "ES256", token])
    """
    parser = build_parser()
    try:
        # Unrecognized arguments are reported here rather than by parse_args(), which
        # would quote them from the top-level parser, whatever the command.
        args, extras = parser.parse_known_args(argv)
        if extras:
            secret = getattr(args, SECRET_ARGUMENTS, False)
            typed = f", {_NOT_REPEATED}" if secret else ": " + " ".join(extras)
            parser.error(f"unrecognized arguments{typed}")
    except _Exit as done:
        return done.status
    except UsageError as exc:
        return _fail(exc, EXIT_USAGE)
    handler: Handler = args.handler
    try:
        return handler(args)
    except TokenwardError as exc:
        return _fail(exc, _status(exc))
    except KeyboardInterrupt:
        note("interrupted")
        return 130
