"""``tokenward users``: add, list, disable and enable accounts, and set passwords.

Passwords never come from the command line, where shell history and ``ps`` would keep
them: they are typed at a prompt (twice, without echo) or piped with
``--password-stdin``. A password given as an argument is refused without repeating it.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import TYPE_CHECKING

from tokenward.cli._commands import EXIT_OK, Subparsers, add_command, add_group
from tokenward.cli._io import STDIN, UsageError, note, read_text, write_json, write_line
from tokenward.cli._runtime import (
    Runtime,
    add_settings_options,
    load_cli_settings,
    run_on_store,
)
from tokenward.cli._tables import format_time, write_table

if TYPE_CHECKING:
    from tokenward.stores import UserRecord

__all__ = ["register"]

_PASSWORD_ARGUMENT = (
    "passwords are not taken from the command line (shell history and ps keep them): "
    "type it at the prompt, or pipe it with --password-stdin"
)


def register(commands: Subparsers) -> None:
    """Add the ``users`` group and its commands to the ``tokenward`` parser."""
    actions = add_group(
        commands,
        "users",
        summary="add, list, disable and enable users; set passwords",
        description=(
            "Manage the auth server's accounts, directly in its store (the server may\n"
            "be running or not). Passwords are hashed with argon2id."
        ),
    )

    add = add_command(
        actions,
        "add",
        _add,
        secret_arguments=True,
        summary="create a user",
        description=(
            "Create a user. The password is prompted for twice (without echo), or read\n"
            "from stdin with --password-stdin (one line; the final newline is removed).\n"
            "--scope grants the scopes the user may be given at login; --admin allows\n"
            "the admin endpoints (the 'admin' scope)."
        ),
        examples=(
            "  tokenward users add ada\n"
            "  tokenward users add ada --scope read --scope write --admin\n"
            "  printf '%s\\n' \"$PASSWORD\" | tokenward users add ci-bot --password-stdin"
        ),
    )
    add.add_argument("name", metavar="NAME", help="username: 1-64 of letters, digits, . _ @ + -")
    _password_options(add)
    add.add_argument(
        "--scope",
        dest="scopes",
        action="append",
        default=[],
        metavar="S",
        help="a scope the user may be granted; repeat, or separate with spaces",
    )
    add.add_argument("--admin", action="store_true", help="allow the admin endpoints")
    add_settings_options(add)

    listing = add_command(
        actions,
        "list",
        _list,
        secret_arguments=True,
        summary="list users",
        description="List every user: name, subject, scopes, admin, disabled, created.",
        examples="  tokenward users list\n  tokenward users list --json",
    )
    listing.add_argument("--json", action="store_true", help="print JSON (times in Unix seconds)")
    add_settings_options(listing)

    disable = add_command(
        actions,
        "disable",
        _disable,
        secret_arguments=True,
        summary="disable a user and revoke their sessions",
        description=(
            "Disable a user: logins fail (with the same error as a wrong password) and\n"
            "every session of the user is revoked. 'users enable' undoes it."
        ),
        examples="  tokenward users disable ada",
    )
    disable.add_argument("name", metavar="NAME", help="the username")
    add_settings_options(disable)

    enable = add_command(
        actions,
        "enable",
        _enable,
        secret_arguments=True,
        summary="enable a disabled user",
        description="Let a disabled user log in again. Revoked sessions stay revoked.",
        examples="  tokenward users enable ada",
    )
    enable.add_argument("name", metavar="NAME", help="the username")
    add_settings_options(enable)

    set_password = add_command(
        actions,
        "set-password",
        _set_password,
        secret_arguments=True,
        summary="change a user's password and revoke their sessions",
        description=(
            "Change a user's password (prompted for twice, or --password-stdin) and\n"
            "revoke every session of the user; says how many were revoked."
        ),
        examples=(
            "  tokenward users set-password ada\n"
            "  printf '%s\\n' \"$PASSWORD\" | tokenward users set-password ada --password-stdin"
        ),
    )
    set_password.add_argument("name", metavar="NAME", help="the username")
    _password_options(set_password)
    add_settings_options(set_password)


def _password_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from stdin instead of prompting",
    )
    # Hidden traps: a password typed on the command line is consumed here and refused,
    # so that it is neither used nor echoed back in a usage error.
    parser.add_argument("--password", nargs="?", const="", help=argparse.SUPPRESS)
    parser.add_argument("stray", nargs="*", default=[], help=argparse.SUPPRESS)


def _refuse_password_arguments(args: argparse.Namespace) -> None:
    if args.password is not None or args.stray:
        raise UsageError(_PASSWORD_ARGUMENT)


# -- passwords ------------------------------------------------------------------------


def _stdin_is_terminal() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def read_new_password(*, from_stdin: bool) -> str:
    """Read a new password from stdin (one line) or, on a terminal, from two prompts."""
    if from_stdin:
        text = read_text(STDIN, what="password")
        password = text.removesuffix("\n").removesuffix("\r")
        if "\n" in password or "\r" in password:
            raise UsageError("the password on stdin must be a single line")
        if not password:
            raise UsageError("no password on stdin")
    else:
        if not _stdin_is_terminal():
            raise UsageError(
                "stdin is not a terminal, so there is no prompt for the password: "
                "pipe it with --password-stdin"
            )
        try:
            password = getpass.getpass("Password: ")
            again = getpass.getpass("Password (again): ")
        except EOFError:
            raise UsageError("no password given") from None
        except UnicodeDecodeError:
            raise UsageError("the password typed is not UTF-8 text") from None
        if password != again:
            raise UsageError("the two passwords differ; nothing was changed")
    from tokenward.service import PasswordHasher

    PasswordHasher.check_policy(password)
    return password


# -- handlers -------------------------------------------------------------------------


def _scopes(values: list[str]) -> list[str]:
    return [scope for value in values for scope in value.split()]


def _add(args: argparse.Namespace) -> int:
    _refuse_password_arguments(args)
    name: str = args.name
    settings = load_cli_settings(args)

    from tokenward.stores import UserExistsError

    async def action(runtime: Runtime) -> UserRecord:
        # Ask for the password only once the name is known to be free.
        if await runtime.store.get_user(name) is not None:
            raise UserExistsError(f"a user named {name!r} exists already")
        password = read_new_password(from_stdin=args.password_stdin)
        return await runtime.users.create_user(
            name, password, scopes=_scopes(args.scopes), admin=args.admin
        )

    user = run_on_store(settings, action)
    scopes = " ".join(user.scopes) or "none"
    role = ", admin" if user.admin else ""
    write_line(f"created user {user.username!r} (sub {user.sub}, scopes: {scopes}{role})")
    return EXIT_OK


def _user_json(user: UserRecord) -> dict[str, object]:
    # Every field but the password hash, which never leaves the store.
    return {
        "username": user.username,
        "sub": user.sub,
        "scopes": list(user.scopes),
        "admin": user.admin,
        "disabled": user.disabled,
        "created_at": user.created_at,
        "updated_at": user.updated_at,
    }


def _list(args: argparse.Namespace) -> int:
    settings = load_cli_settings(args)

    async def action(runtime: Runtime) -> list[UserRecord]:
        return list(await runtime.store.list_users())

    users = run_on_store(settings, action)
    if args.json:
        write_json([_user_json(user) for user in users])
        return EXIT_OK
    if not users:
        note("no users yet; add one with: tokenward users add NAME")
        return EXIT_OK
    write_table(
        ("USERNAME", "SUB", "SCOPES", "ADMIN", "DISABLED", "CREATED"),
        [
            (
                user.username,
                user.sub,
                " ".join(user.scopes),
                "yes" if user.admin else "no",
                "yes" if user.disabled else "no",
                format_time(user.created_at),
            )
            for user in users
        ],
    )
    return EXIT_OK


def _sessions(count: int) -> str:
    return f"{count} session" if count == 1 else f"{count} sessions"


def _disable(args: argparse.Namespace) -> int:
    name: str = args.name
    settings = load_cli_settings(args)

    async def action(runtime: Runtime) -> tuple[bool, int]:
        user = await runtime.require_user(name)
        return user.disabled, await runtime.users.set_disabled(name, True)

    was_disabled, revoked = run_on_store(settings, action)
    if was_disabled:
        note(f"user {name!r} was disabled already")
    write_line(f"disabled user {name!r}; revoked {_sessions(revoked)}")
    return EXIT_OK


def _enable(args: argparse.Namespace) -> int:
    name: str = args.name
    settings = load_cli_settings(args)

    async def action(runtime: Runtime) -> None:
        await runtime.require_user(name)
        await runtime.users.set_disabled(name, False)

    run_on_store(settings, action)
    write_line(f"enabled user {name!r}")
    return EXIT_OK


def _set_password(args: argparse.Namespace) -> int:
    _refuse_password_arguments(args)
    name: str = args.name
    settings = load_cli_settings(args)

    async def action(runtime: Runtime) -> int:
        await runtime.require_user(name)
        password = read_new_password(from_stdin=args.password_stdin)
        return await runtime.users.set_password(name, password)

    revoked = run_on_store(settings, action)
    write_line(f"changed the password of {name!r}; revoked {_sessions(revoked)}")
    return EXIT_OK
