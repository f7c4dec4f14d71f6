"""``tokenward keys rotate`` and ``keys list``: the auth server's signing keys.

These join the ``keys`` group (see :mod:`tokenward.cli._keys`) but work on the key ring
in the server's store, not on key files. Keys are ``next`` (published in JWKS, not yet
signing), ``current`` (signing) or ``retired`` (published until every token they
signed has expired, then pruned). Nothing here prints key material: only ``kid``,
``alg``, state and times.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tokenward.cli._commands import EXIT_OK, Subparsers, add_command
from tokenward.cli._io import write_json, write_line
from tokenward.cli._runtime import Runtime, add_settings_options, load_cli_settings, run_on_store
from tokenward.cli._tables import format_time, write_table

if TYPE_CHECKING:
    from tokenward.stores import KeyRecord

__all__ = ["register"]


def register(actions: Subparsers) -> None:
    """Add ``rotate`` and ``list`` to the ``keys`` group's actions."""
    rotate = add_command(
        actions,
        "rotate",
        _rotate,
        summary="rotate the auth server's signing key",
        description=(
            "Make a new key current: the oldest 'next' key if there is one, else a new\n"
            "key. The old current key is retired: it stays in JWKS until every token it\n"
            "signed has expired (the refresh lifetime plus leeway, plus two minutes in\n"
            "which running servers may still sign with it before they reload their keys),\n"
            "and retired keys past that time are pruned. With --prepare, only add a 'next'\n"
            "key: running servers publish it in JWKS within a minute, and it signs after the\n"
            "following 'keys rotate'; rotate once verifiers' JWKS caches have it\n"
            "(jwks_max_age later), so they know it before the first token it signs."
        ),
        examples="  tokenward keys rotate\n  tokenward keys rotate --prepare",
    )
    rotate.add_argument(
        "--prepare", action="store_true", help="only publish a 'next' key; do not rotate yet"
    )
    add_settings_options(rotate)

    listing = add_command(
        actions,
        "list",
        _list,
        summary="list the auth server's signing keys (never their material)",
        description=(
            "List the signing keys in the store: kid, alg, state (next, current,\n"
            "retired), created, and for retired keys when they may be pruned."
        ),
        examples="  tokenward keys list\n  tokenward keys list --json",
    )
    listing.add_argument("--json", action="store_true", help="print JSON (times in Unix seconds)")
    add_settings_options(listing)


@dataclass(frozen=True, slots=True)
class _Rotation:
    current: KeyRecord
    retired: list[KeyRecord]
    pruned: list[str]


def _record(runtime: Runtime, kid: str | None) -> KeyRecord:
    return next(r for r in runtime.tokens.keyring.records if r.kid == kid)


async def _prepare(runtime: Runtime) -> KeyRecord:
    key = await runtime.tokens.keyring.add_next()
    return _record(runtime, key.kid)


async def _rotate_now(runtime: Runtime) -> _Rotation:
    from tokenward.stores import KeyState

    keyring = runtime.tokens.keyring
    before = {r.kid for r in keyring.records if r.state is KeyState.CURRENT}
    key = await keyring.rotate()
    retired = [r for r in keyring.records if r.kid in before and r.state is KeyState.RETIRED]
    pruned = await keyring.prune()
    return _Rotation(_record(runtime, key.kid), retired, pruned)


def _rotate(args: argparse.Namespace) -> int:
    settings = load_cli_settings(args)
    if args.prepare:
        added = run_on_store(settings, _prepare)
        write_line(f"added next key {added.kid} ({added.alg}); it signs after 'keys rotate'")
        return EXIT_OK
    done = run_on_store(settings, _rotate_now)
    write_line(f"current key is now {done.current.kid} ({done.current.alg})")
    for record in done.retired:
        until = format_time(record.retire_after)
        write_line(f"retired key {record.kid}; published until {until}")
    for kid in done.pruned:
        write_line(f"pruned retired key {kid}")
    return EXIT_OK


async def _records(runtime: Runtime) -> list[KeyRecord]:
    return runtime.tokens.keyring.records


def _list(args: argparse.Namespace) -> int:
    settings = load_cli_settings(args)
    records = run_on_store(settings, _records)
    if args.json:
        write_json(
            [
                {
                    "kid": r.kid,
                    "alg": r.alg,
                    "state": r.state.value,
                    "created_at": r.created_at,
                    "retire_after": r.retire_after,
                }
                for r in records
            ]
        )
        return EXIT_OK
    write_table(
        ("KID", "ALG", "STATE", "CREATED", "RETIRE AFTER"),
        [
            (r.kid, r.alg, r.state.value, format_time(r.created_at), format_time(r.retire_after))
            for r in records
        ],
    )
    return EXIT_OK
