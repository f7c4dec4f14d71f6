"""The SQL of the SQLite store: schema, migrations, statements, write transaction.

The schema version lives in the database header (``PRAGMA user_version``): 0 for a new
file, ``len(MIGRATIONS)`` once every migration has run. Each migration is a tuple of
statements applied in one ``BEGIN IMMEDIATE`` transaction together with the new
``user_version``, so a migration is applied completely or not at all (``user_version``
is part of the transaction, as every write to the file is), and several processes
opening one file at once serialize on the write lock: the loser re-reads the version
inside its own transaction and finds nothing left to do.

To change the schema, append a migration; never edit one that has shipped. The
statements :mod:`tokenward.stores.sqlite` runs live here too, next to the tables and
indexes they rely on.

:func:`immediate` is the one way the store writes: a ``BEGIN IMMEDIATE`` transaction
that commits whole or rolls back, shared by the migrations and every store method.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, TypeVar

from tokenward.stores.base import (
    KeyRecord,
    KeyState,
    RevocationEvent,
    RevocationKind,
    SessionRecord,
    StoreError,
    UserRecord,
)

__all__ = [
    "ADVANCE",
    "CLEAR_FAILURES",
    "DELETE_KEY",
    "INSERT_EVENT",
    "INSERT_SESSION",
    "INSERT_SESSION_EVENTS_OF_SUB",
    "INSERT_USER",
    "LIST_KEYS",
    "LIST_USERS",
    "MIGRATIONS",
    "PURGE_REVOCATIONS",
    "PURGE_SESSIONS",
    "PUT_KEY",
    "RECORD_FAILURE",
    "REVOCATIONS_SINCE",
    "REVOKE_ACTIVE",
    "REVOKE_ACTIVE_OF_SUB",
    "REVOKE_ONE",
    "SCHEMA_VERSION",
    "SELECT_ACTIVE_OF_SUB",
    "SELECT_FAILURES",
    "SELECT_FOR_ROTATE",
    "SELECT_SESSION",
    "SELECT_USER",
    "SESSION_COLUMNS",
    "SESSION_FIELDS",
    "UPDATE_USER",
    "USER_COLUMNS",
    "Migration",
    "event",
    "immediate",
    "key",
    "key_row",
    "migrate",
    "record",
    "schema_version",
    "user",
    "user_row",
]

T = TypeVar("T")
Migration = tuple[str, ...]

_V1_SESSIONS_AND_REVOCATIONS: Migration = (
    # One row per session. ``current_hash`` and ``previous_hash`` are SHA-256 digests of
    # refresh-token jtis; ``sealed`` is the successor pair of the last rotation, sealed
    # under a key only the holder of the previous refresh token can derive.
    """
    CREATE TABLE sessions (
        sid                 TEXT    PRIMARY KEY NOT NULL,
        sub                 TEXT    NOT NULL,
        created_at          REAL    NOT NULL,
        last_used_at        REAL    NOT NULL,
        idle_expires_at     REAL    NOT NULL,
        absolute_expires_at REAL    NOT NULL,
        generation          INTEGER NOT NULL DEFAULT 0,
        scope               TEXT    NOT NULL DEFAULT '',
        client_id           TEXT,
        user_agent          TEXT,
        ip                  TEXT,
        revoked_at          REAL,
        revoked_reason      TEXT,
        current_hash        BLOB    NOT NULL,
        previous_hash       BLOB,
        rotated_at          REAL,
        sealed              BLOB
    )
    """,
    # list_sessions and revoke_user select by sub; list_sessions orders by creation.
    "CREATE INDEX sessions_by_sub ON sessions (sub, created_at)",
    # purge_expired finds sessions past either expiry through this expression index; the
    # query must spell the expression exactly like this to use it.
    "CREATE INDEX sessions_by_expiry ON sessions (min(idle_expires_at, absolute_expires_at))",
    # The revocation feed. AUTOINCREMENT guarantees that a seq is never reused, even
    # after the newest events were purged, so a verifier's cursor can never skip an
    # event. seq is the rowid: "seq > ?" is a range search on the table's own b-tree.
    """
    CREATE TABLE revocations (
        seq        INTEGER PRIMARY KEY AUTOINCREMENT,
        kind       TEXT    NOT NULL CHECK (kind IN ('session', 'user', 'all')),
        sid        TEXT,
        sub        TEXT,
        at         REAL    NOT NULL,
        expires_at REAL    NOT NULL,
        reason     TEXT    NOT NULL DEFAULT ''
    )
    """,
    "CREATE INDEX revocations_by_expiry ON revocations (expires_at)",
    # Signing keys of the key ring; ``extra`` is a JSON object.
    """
    CREATE TABLE signing_keys (
        kid          TEXT PRIMARY KEY NOT NULL,
        alg          TEXT NOT NULL,
        state        TEXT NOT NULL,
        material     BLOB NOT NULL,
        created_at   REAL NOT NULL,
        retire_after REAL,
        extra        TEXT NOT NULL DEFAULT '{}'
    )
    """,
)

_V2_USERS_AND_LOGIN_FAILURES: Migration = (
    # Accounts. ``sub`` is the stable subject put in tokens, so it is the key; the
    # username may change (update_user renames), and must stay unique. The BINARY
    # collation makes the match and the uniqueness case-sensitive, as the contract asks.
    # ``password_hash`` is an argon2id PHC string; ``scopes`` a JSON array of strings
    # (JSON rather than space-separated, so every tuple of strings comes back exactly).
    """
    CREATE TABLE users (
        sub           TEXT    PRIMARY KEY NOT NULL,
        username      TEXT    NOT NULL,
        password_hash TEXT    NOT NULL,
        scopes        TEXT    NOT NULL DEFAULT '[]',
        admin         INTEGER NOT NULL DEFAULT 0 CHECK (admin IN (0, 1)),
        disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
        created_at    REAL    NOT NULL,
        updated_at    REAL    NOT NULL
    )
    """,
    # get_user looks users up by name and list_users orders by it; a violation of this
    # index (or of the primary key) is what the store reports as UserExistsError.
    "CREATE UNIQUE INDEX users_by_username ON users (username)",
    # Login throttling: one fixed window per key (an account or an address). The window
    # opens at a key's first failure and ends at ``window_ends``; the next failure at or
    # after that time starts a new window.
    """
    CREATE TABLE login_failures (
        key         TEXT    PRIMARY KEY NOT NULL,
        count       INTEGER NOT NULL,
        window_ends REAL    NOT NULL
    )
    """,
)

MIGRATIONS: tuple[Migration, ...] = (_V1_SESSIONS_AND_REVOCATIONS, _V2_USERS_AND_LOGIN_FAILURES)
"""Every migration in order; migration ``i`` (from 0) brings the file to version ``i + 1``."""

SCHEMA_VERSION = len(MIGRATIONS)
"""The version a file has once :func:`migrate` has run."""


# The statements the store runs, next to the schema they depend on.

SESSION_COLUMNS = (
    "sid, sub, created_at, last_used_at, idle_expires_at, absolute_expires_at, generation,"
    " scope, client_id, user_agent, ip, revoked_at, revoked_reason"
)
SESSION_FIELDS = tuple(name.strip() for name in SESSION_COLUMNS.split(","))
"""The names of ``SESSION_COLUMNS``, in their order: a row's positions."""
SELECT_SESSION = f"SELECT {SESSION_COLUMNS} FROM sessions WHERE sid = ?"  # noqa: S608 (constant)
SELECT_FOR_ROTATE = (
    f"SELECT {SESSION_COLUMNS}, current_hash, previous_hash, rotated_at, sealed"  # noqa: S608
    " FROM sessions WHERE sid = ?"
)
SELECT_ACTIVE_OF_SUB = (
    f"SELECT {SESSION_COLUMNS} FROM sessions"  # noqa: S608 (constant)
    " WHERE sub = ? AND revoked_at IS NULL AND idle_expires_at > ? AND absolute_expires_at > ?"
    " ORDER BY created_at, sid"
)
INSERT_SESSION = (
    "INSERT INTO sessions (sid, sub, created_at, last_used_at, idle_expires_at,"
    " absolute_expires_at, scope, client_id, user_agent, ip, current_hash)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
ADVANCE = (
    "UPDATE sessions SET generation = generation + 1, previous_hash = current_hash,"
    " current_hash = ?, sealed = ?, rotated_at = ?, last_used_at = ?, idle_expires_at = ?"
    " WHERE sid = ?"
)
REVOKE_ONE = (
    "UPDATE sessions SET revoked_at = ?, revoked_reason = ?"
    " WHERE sid = ? AND revoked_at IS NULL RETURNING sub"
)
REVOKE_ACTIVE = (
    "UPDATE sessions SET revoked_at = ?, revoked_reason = ?"
    " WHERE revoked_at IS NULL AND idle_expires_at > ? AND absolute_expires_at > ?"
)
REVOKE_ACTIVE_OF_SUB = REVOKE_ACTIVE + " AND sub = ?"
# revoke_user's SESSION events, one per session REVOKE_ACTIVE_OF_SUB is about to revoke
# (run first, in the same transaction, so both see the same rows), oldest first: rows
# are inserted, and so numbered, in the SELECT's order. Uses sessions_by_sub.
INSERT_SESSION_EVENTS_OF_SUB = (
    "INSERT INTO revocations (kind, sid, sub, at, expires_at, reason)"
    " SELECT 'session', sid, sub, :now, :expires_at, :reason FROM sessions"
    " WHERE sub = :sub AND revoked_at IS NULL"
    " AND idle_expires_at > :now AND absolute_expires_at > :now"
    " ORDER BY created_at, sid"
)
INSERT_EVENT = (
    "INSERT INTO revocations (kind, sid, sub, at, expires_at, reason) VALUES (?, ?, ?, ?, ?, ?)"
)
# NOT INDEXED keeps the planner on the rowid range search "seq > ?" (a poll that finds
# nothing new costs one b-tree descent) rather than the expiry index, whatever the
# table's statistics say; the INTEGER PRIMARY KEY is still used.
REVOCATIONS_SINCE = (
    "SELECT seq, kind, sid, sub, at, expires_at, reason FROM revocations NOT INDEXED"
    " WHERE seq > ? AND expires_at > ? ORDER BY seq"
)
# Bounded deletes (DESIGN.md, "Expired rows are purged in small batches"): the inner
# SELECT uses the expiry indexes and stops after ``batch`` rows.
PURGE_SESSIONS = (
    "DELETE FROM sessions WHERE rowid IN (SELECT rowid FROM sessions"
    " WHERE min(idle_expires_at, absolute_expires_at) <= ? LIMIT ?)"
)
PURGE_REVOCATIONS = (
    "DELETE FROM revocations WHERE seq IN (SELECT seq FROM revocations"
    " WHERE expires_at <= ? ORDER BY expires_at LIMIT ?)"
)
PUT_KEY = (
    "INSERT INTO signing_keys (kid, alg, state, material, created_at, retire_after, extra)"
    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (kid) DO UPDATE SET alg = excluded.alg,"
    " state = excluded.state, material = excluded.material, created_at = excluded.created_at,"
    " retire_after = excluded.retire_after, extra = excluded.extra"
)
DELETE_KEY = "DELETE FROM signing_keys WHERE kid = ?"
LIST_KEYS = (
    "SELECT kid, alg, state, material, created_at, retire_after, extra FROM signing_keys"
    " ORDER BY created_at, kid"
)
USER_COLUMNS = "sub, username, password_hash, scopes, admin, disabled, created_at, updated_at"
SELECT_USER = f"SELECT {USER_COLUMNS} FROM users WHERE username = ?"  # noqa: S608 (constant)
LIST_USERS = f"SELECT {USER_COLUMNS} FROM users ORDER BY username"  # noqa: S608 (constant)
INSERT_USER = (
    f"INSERT INTO users ({USER_COLUMNS}) VALUES (:sub, :username, :password_hash,"  # noqa: S608
    " :scopes, :admin, :disabled, :created_at, :updated_at)"
)
UPDATE_USER = (
    "UPDATE users SET username = :username, password_hash = :password_hash,"
    " scopes = :scopes, admin = :admin, disabled = :disabled, created_at = :created_at,"
    " updated_at = :updated_at WHERE sub = :sub"
)
# One statement reads, decides and writes the counter: a key's first failure inserts the
# row; a later one either counts within the window or, at or after its end, opens a new
# window. SQLite evaluates every SET expression against the row as it was, so both CASEs
# test the old ``window_ends``. Run inside BEGIN IMMEDIATE like every write.
RECORD_FAILURE = (
    "INSERT INTO login_failures (key, count, window_ends) VALUES (:key, 1, :ends)"
    " ON CONFLICT (key) DO UPDATE SET"
    " count = CASE WHEN :now >= window_ends THEN 1 ELSE count + 1 END,"
    " window_ends = CASE WHEN :now >= window_ends THEN :ends ELSE window_ends END"
    " RETURNING count"
)
SELECT_FAILURES = "SELECT count, window_ends FROM login_failures WHERE key = ?"
CLEAR_FAILURES = "DELETE FROM login_failures WHERE key = ?"


def immediate(connection: sqlite3.Connection, body: Callable[[sqlite3.Connection], T]) -> T:
    """Run ``body`` in one ``BEGIN IMMEDIATE`` transaction: committed whole, or rolled back.

    ``BEGIN IMMEDIATE`` takes the file's write lock before anything is read, so writers
    in other connections and other processes wait (up to the busy timeout) instead of
    reading a row that is about to change: a read-decide-write ``body`` is atomic. If
    the lock cannot be had, nothing was started; if anything fails later, including the
    ``COMMIT``, the transaction is rolled back and the error re-raised.
    """
    connection.execute("BEGIN IMMEDIATE")
    try:
        result = body(connection)
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            # A failing rollback must not mask the error that caused it; SQLite rolls
            # back by itself when the connection closes.
            with contextlib.suppress(sqlite3.Error):
                connection.execute("ROLLBACK")
        raise
    return result


def schema_version(connection: sqlite3.Connection) -> int:
    """Return the schema version recorded in the file (0 for a new file)."""
    version: int = connection.execute("PRAGMA user_version").fetchone()[0]
    return version


def migrate(connection: sqlite3.Connection, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """Bring the file up to ``len(migrations)``, one transaction per migration.

    ``connection`` must be in autocommit mode (``isolation_level=None``), so that the
    explicit ``BEGIN IMMEDIATE`` / ``COMMIT`` here are the only transactions. Returns the
    version reached. Raises :class:`StoreError` if the file was written by a newer
    tokenward (a higher version than any migration known here): running against a schema
    we do not understand could corrupt it.
    """
    target = len(migrations)
    version = schema_version(connection)
    for number, statements in enumerate(migrations, start=1):
        if version >= number:
            continue
        version = immediate(connection, partial(_apply, number=number, statements=statements))
    if version > target:
        raise StoreError(
            f"the database has schema version {version}, newer than this tokenward "
            f"supports ({target}); upgrade tokenward"
        )
    return version


def _apply(connection: sqlite3.Connection, *, number: int, statements: Migration) -> int:
    # Another process may have migrated while we waited for the write lock.
    version = schema_version(connection)
    if version < number:
        for statement in statements:
            connection.execute(statement)
        # PRAGMA takes no bound parameters; ``number`` is an int we computed.
        connection.execute(f"PRAGMA user_version = {number:d}")
        version = number
    return version


# Rows and records: the column order of the statements above.


def record(row: Sequence[Any]) -> SessionRecord:
    """The public record of a row selected with ``SESSION_COLUMNS`` first."""
    return SessionRecord(
        sid=row[0],
        sub=row[1],
        created_at=row[2],
        last_used_at=row[3],
        idle_expires_at=row[4],
        absolute_expires_at=row[5],
        generation=row[6],
        scope=row[7],
        client_id=row[8],
        user_agent=row[9],
        ip=row[10],
        revoked_at=row[11],
        revoked_reason=row[12],
    )


def event(row: tuple[Any, ...]) -> RevocationEvent:
    """A revocation event from a ``REVOCATIONS_SINCE`` row."""
    seq, kind, sid, sub, at, expires_at, reason = row
    return RevocationEvent(seq, RevocationKind(kind), at, expires_at, sid, sub, reason)


def key(row: tuple[Any, ...]) -> KeyRecord:
    """A signing key from a ``LIST_KEYS`` row."""
    kid, alg, state, material, created_at, retire_after, extra = row
    return KeyRecord(
        kid, alg, KeyState(state), material, created_at, retire_after, json.loads(extra)
    )


def key_row(key: KeyRecord) -> tuple[Any, ...]:
    """The ``PUT_KEY`` parameters of a signing key; ``extra`` must be JSON-serializable."""
    try:
        extra = json.dumps(key.extra, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        raise StoreError("a signing key's extra fields must be JSON-serializable") from None
    return (
        key.kid,
        key.alg,
        key.state.value,
        key.material,
        key.created_at,
        key.retire_after,
        extra,
    )


def user(row: tuple[Any, ...]) -> UserRecord:
    """A user from a row selected with ``USER_COLUMNS``."""
    sub, username, password_hash, scopes, admin, disabled, created_at, updated_at = row
    return UserRecord(
        sub=sub,
        username=username,
        password_hash=password_hash,
        created_at=created_at,
        updated_at=updated_at,
        scopes=tuple(json.loads(scopes)),
        admin=bool(admin),
        disabled=bool(disabled),
    )


def user_row(user: UserRecord) -> dict[str, Any]:
    """The named parameters of ``INSERT_USER`` and ``UPDATE_USER`` for a user."""
    return {
        "sub": user.sub,
        "username": user.username,
        "password_hash": user.password_hash,
        "scopes": json.dumps(list(user.scopes), separators=(",", ":")),
        "admin": int(user.admin),
        "disabled": int(user.disabled),
        "created_at": user.created_at,
        "updated_at": user.updated_at,
    }
