"""``tokenward sessions``: list active sessions and revoke them.

A revocation goes to the store and to its revocation feed, so running servers and
verifiers deny the session's access tokens without a restart; its refresh token is
refused at once.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from tokenward.cli._commands import EXIT_OK, Subparsers, add_command, add_group
from tokenward.cli._io import note, write_json, write_line
from tokenward.cli._runtime import (
    Runtime,
    UnknownSessionIDError,
    add_settings_options,
    load_cli_settings,
    run_on_store,
)
from tokenward.cli._tables import format_time, write_table

if TYPE_CHECKING:
    from tokenward.stores import SessionRecord

__all__ = ["register"]

_REASON = "admin"
"""The revocation reason recorded for sessions revoked from the command line."""


def register(commands: Subparsers) -> None:
    """Add the ``sessions`` group and its commands to the ``tokenward`` parser."""
    actions = add_group(
        commands,
        "sessions",
        summary="list and revoke sessions",
        description=(
            "List active sessions (one per login on one device) and revoke them,\n"
            "directly in the auth server's store."
        ),
    )

    listing = add_command(
        actions,
        "list",
        _list,
        summary="list active sessions",
        description=(
            "List active sessions, of one user (--user) or of everyone: session id,\n"
            "user, client, address, device (user agent), created, last used, expiry."
        ),
        examples="  tokenward sessions list\n  tokenward sessions list --user ada --json",
    )
    listing.add_argument("--user", metavar="NAME", help="only this user's sessions")
    listing.add_argument("--json", action="store_true", help="print JSON (times in Unix seconds)")
    add_settings_options(listing)

    revoke = add_command(
        actions,
        "revoke",
        _revoke,
        summary="revoke one session, a user's sessions, or all sessions",
        description=(
            "Revoke one session by its id, every session of a user (--user), or every\n"
            "session there is (--all). Their refresh tokens stop working at once, and\n"
            "their access tokens are denied by servers following the revocation feed."
        ),
        examples=(
            "  tokenward sessions revoke 3q2-7wEkQ0aXb1Cz\n"
            "  tokenward sessions revoke --user ada\n"
            "  tokenward sessions revoke --all"
        ),
    )
    which = revoke.add_mutually_exclusive_group(required=True)
    which.add_argument("sid", nargs="?", metavar="SID", help="the session id")
    which.add_argument("--user", metavar="NAME", help="every session of this user")
    which.add_argument("--all", action="store_true", help="every session of every user")
    add_settings_options(revoke)


def _session_json(session: SessionRecord, username: str) -> dict[str, object]:
    return {
        "sid": session.sid,
        "user": username,
        "sub": session.sub,
        "client_id": session.client_id,
        "ip": session.ip,
        "user_agent": session.user_agent,
        "scope": session.scope,
        "created_at": session.created_at,
        "last_used_at": session.last_used_at,
        "expires_at": min(session.idle_expires_at, session.absolute_expires_at),
    }


def _list(args: argparse.Namespace) -> int:
    only: str | None = args.user
    settings = load_cli_settings(args)

    async def action(runtime: Runtime) -> list[tuple[SessionRecord, str]]:
        if only is not None:
            users = [await runtime.require_user(only)]
        else:
            users = list(await runtime.store.list_users())
        found = []
        for user in users:
            for session in await runtime.tokens.list_sessions(user.sub):
                found.append((session, user.username))
        found.sort(key=lambda item: (item[0].created_at, item[0].sid))
        return found

    sessions = run_on_store(settings, action)
    if args.json:
        write_json([_session_json(session, name) for session, name in sessions])
        return EXIT_OK
    if not sessions:
        note("no active sessions")
        return EXIT_OK
    write_table(
        ("SID", "USER", "CLIENT", "ADDRESS", "DEVICE", "CREATED", "LAST USED", "EXPIRES"),
        [
            (
                session.sid,
                name,
                session.client_id or "-",
                session.ip or "-",
                session.user_agent or "-",
                format_time(session.created_at),
                format_time(session.last_used_at),
                format_time(min(session.idle_expires_at, session.absolute_expires_at)),
            )
            for session, name in sessions
        ],
    )
    return EXIT_OK


def _count(count: int) -> str:
    return f"{count} session" if count == 1 else f"{count} sessions"


async def _revoke_one(runtime: Runtime, sid: str) -> bool:
    session = await runtime.store.get_session(sid)
    if session is None:
        raise UnknownSessionIDError(f"no session with id {sid!r}")
    if session.revoked_at is not None:
        return False
    return await runtime.tokens.revoke_session(sid, reason=_REASON)


async def _revoke_user(runtime: Runtime, name: str) -> int:
    user = await runtime.require_user(name)
    return await runtime.tokens.revoke_user(user.sub, reason=_REASON)


async def _revoke_all(runtime: Runtime) -> int:
    return await runtime.tokens.revoke_all(reason=_REASON)


def _revoke(args: argparse.Namespace) -> int:
    sid: str | None = args.sid
    name: str | None = args.user
    settings = load_cli_settings(args)
    if sid is not None:
        if run_on_store(settings, lambda runtime: _revoke_one(runtime, sid)):
            write_line(f"revoked session {sid}")
        else:
            note(f"session {sid} was revoked already")
    elif name is not None:
        count = run_on_store(settings, lambda runtime: _revoke_user(runtime, name))
        write_line(f"revoked {_count(count)} of {name!r}")
    else:
        count = run_on_store(settings, _revoke_all)
        write_line(f"revoked {_count(count)} of all users")
    return EXIT_OK
