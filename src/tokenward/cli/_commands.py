"""How command groups plug into the ``tokenward`` parser.

Each command group (``keys``, ``token``, and later ``serve``, ``users``, ``sessions``,
``bench``) lives in its own module with one public function, ``register(commands)``,
which adds the group with :func:`add_group` and its actions with :func:`add_command`.
An action's handler receives the parsed arguments and returns the exit status; it
reports failures by raising :class:`~tokenward.errors.TokenwardError`, which ``main``
turns into one ``error: <code>: <message>`` line on stderr.

Exit statuses (:data:`EXIT_OK`, :data:`EXIT_TOKEN`, :data:`EXIT_REFUSED`,
:data:`EXIT_USAGE`, :data:`EXIT_STORE`) are part of the tool's interface: scripts branch
on them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeAlias

from tokenward.errors import TokenwardError

__all__ = [
    "EXIT_OK",
    "EXIT_REFUSED",
    "EXIT_STORE",
    "EXIT_TOKEN",
    "EXIT_USAGE",
    "SECRET_ARGUMENTS",
    "Handler",
    "RefusedError",
    "Subparsers",
    "add_command",
    "add_group",
]

EXIT_OK = 0
"""The command did what it was asked."""
EXIT_TOKEN = 1
"""A token was refused: malformed, badly signed, expired, wrong audience, ..."""
EXIT_REFUSED = 1
"""A server-side command was refused: unknown user or session, user exists already, ..."""
EXIT_USAGE = 2
"""The command line or its inputs are wrong: bad option, unreadable or invalid key file."""
EXIT_STORE = 3
"""The store named by the settings is unavailable (or failed): try again later."""

SECRET_ARGUMENTS = "secret_arguments"
"""The parser default that marks a command whose arguments may hold a password."""

Handler: TypeAlias = Callable[[argparse.Namespace], int]
"""Runs one action with its parsed arguments and returns the exit status."""
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
"""What ``ArgumentParser.add_subparsers`` returns; groups register into it."""

_FORMATTER = argparse.RawDescriptionHelpFormatter


class RefusedError(TokenwardError):
    """The store holds nothing to act on, or refuses the change: exit status 1."""

    code = "refused"


def add_group(commands: Subparsers, name: str, *, summary: str, description: str) -> Subparsers:
    """Add the command group ``name`` and return the sub-parsers its actions go into.

    >>> parser = argparse.ArgumentParser(prog="tokenward")
    >>> keys = add_group(parser.add_subparsers(), "keys", summary="keys", description="Keys.")
    """
    group = commands.add_parser(
        name, help=summary, description=description, formatter_class=_FORMATTER
    )
    return group.add_subparsers(
        title="commands", dest=f"{name}_command", metavar="COMMAND", required=True
    )


def add_command(
    actions: Subparsers,
    name: str,
    handler: Handler,
    *,
    summary: str,
    description: str,
    examples: str,
    secret_arguments: bool = False,
) -> argparse.ArgumentParser:
    """Add the action ``name`` run by ``handler``; return its parser to add arguments to.

    ``examples`` is shown verbatim under the options in ``--help``. With
    ``secret_arguments`` (a command where a password could be typed by mistake), a usage
    error never repeats what was typed, and long options cannot be abbreviated: an
    abbreviation such as ``--pass=...`` would otherwise be quoted back as ambiguous.
    """
    parser = actions.add_parser(
        name,
        help=summary,
        description=description,
        epilog=f"examples:\n{examples}",
        formatter_class=_FORMATTER,
        allow_abbrev=not secret_arguments,
    )
    parser.set_defaults(handler=handler, **{SECRET_ARGUMENTS: secret_arguments})
    return parser
