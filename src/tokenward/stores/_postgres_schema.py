"""Schema, migrations and server-side functions of the PostgreSQL session store.

Everything lives in one schema chosen by the caller (``tokenward`` by default), so
several deployments, or several tests, share a database without seeing each other.
The schema name is validated as a plain identifier and always double-quoted.

The version is the highest ``version`` in ``<schema>.schema_version``. :func:`migrate`
applies each pending migration in its own transaction, together with its
``schema_version`` row, so a migration is applied completely or not at all. Every such
transaction first takes ``pg_advisory_xact_lock`` on a key derived from the schema
name: processes that start at once serialize, and the later ones re-read the version
under the lock and find nothing left to do. A database at a newer version than this
code knows is accepted (migrations only add), so a rolling deploy can run old and new
code side by side.

The hot paths are PL/pgSQL functions created by the migrations, so that each one is a
single ``SELECT`` (one round trip) whose work commits or rolls back as one transaction:

* ``tokenward_rotate`` locks the session row (``SELECT ... FOR UPDATE``), so concurrent
  rotations of one session serialize, then decides and writes in the same call;
* ``tokenward_revoke_session`` and ``tokenward_revoke_many`` (a user's sessions, or
  everyone's) revoke and record the events;
* ``tokenward_record_event`` inserts a revocation event and ``pg_notify``-s it on
  ``<schema>_revocations`` (delivered at commit, so listeners never hear of a
  revocation that rolled back). It holds a transaction-level advisory lock from
  allocating ``seq`` to commit, so events commit in ``seq`` order and a verifier that
  resumes after the highest ``seq`` it saw can never miss one committed late.

Migration 2 adds ``users`` (accounts) and ``login_failures`` (throttling counters);
their statements are single SQL statements in the store, needing no functions.
Migration 3 replaces ``tokenward_revoke_many`` so that revoking a user also records
(and notifies) one ``session`` event per revoked session, before the ``user`` event.

To change the schema, append a migration; never edit one that has shipped.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from tokenward.errors import ConfigurationError

__all__ = ["MIGRATIONS", "Connection", "Migration", "SchemaNames", "migrate", "schema_version"]

# NOTIFY channels are identifiers of at most 63 bytes; "_revocations" takes 12 of them.
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,50}", re.ASCII)


class Connection(Protocol):
    """The part of ``asyncpg.Connection`` that migrations use (asyncpg ships no types)."""

    async def execute(self, query: str, *args: object) -> str: ...

    async def fetchval(self, query: str, *args: object) -> Any: ...

    def transaction(self) -> Any: ...


def _advisory_key(purpose: str, schema: str) -> int:
    digest = hashlib.sha256(f"tokenward:{purpose}:{schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@dataclass(frozen=True, slots=True)
class SchemaNames:
    """The validated schema name and everything derived from it."""

    schema: str

    def __post_init__(self) -> None:
        if not _IDENTIFIER.fullmatch(self.schema) or self.schema.lower().startswith("pg_"):
            raise ConfigurationError(
                "PostgreSQL schema must be 1-51 ASCII letters, digits or underscores, "
                "not starting with a digit or 'pg_'"
            )

    @property
    def quoted(self) -> str:
        """The schema as a quoted identifier (validation leaves nothing to escape)."""
        return f'"{self.schema}"'

    @property
    def channel(self) -> str:
        """The LISTEN/NOTIFY channel carrying this schema's revocation events."""
        return f"{self.schema}_revocations"

    @property
    def migration_lock(self) -> int:
        """Advisory lock key serializing migrations of this schema."""
        return _advisory_key("migrate", self.schema)

    @property
    def event_lock(self) -> int:
        """Advisory lock key serializing revocation-event writers of this schema."""
        return _advisory_key("events", self.schema)

    def render(self, template: str) -> str:
        """Fill ``{schema}``, ``{channel}`` and ``{event_lock}`` into an SQL template."""
        return (
            template.replace("{schema}", self.quoted)
            .replace("{channel}", f"'{self.channel}'")
            .replace("{event_lock}", str(self.event_lock))
        )


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema change: an SQL template (see :meth:`SchemaNames.render`)."""

    description: str
    template: str


_V1_TABLES = """
-- One row per session. current_hash and previous_hash are SHA-256 digests of refresh
-- token jtis; sealed is the successor pair of the last rotation, sealed under a key
-- only the holder of the previous refresh token can derive.
CREATE TABLE {schema}.sessions (
    sid                 text             PRIMARY KEY,
    sub                 text             NOT NULL,
    created_at          double precision NOT NULL,
    last_used_at        double precision NOT NULL,
    idle_expires_at     double precision NOT NULL,
    absolute_expires_at double precision NOT NULL,
    generation          bigint           NOT NULL DEFAULT 0,
    scope               text             NOT NULL DEFAULT '',
    client_id           text,
    user_agent          text,
    ip                  text,
    revoked_at          double precision,
    revoked_reason      text,
    current_hash        bytea            NOT NULL,
    previous_hash       bytea,
    rotated_at          double precision,
    sealed              bytea
);
-- list_sessions and revoke_user select by sub; list_sessions orders by creation.
CREATE INDEX sessions_by_sub ON {schema}.sessions (sub, created_at);
-- purge_expired spells this expression exactly, so that it uses the index.
CREATE INDEX sessions_by_expiry
    ON {schema}.sessions (least(idle_expires_at, absolute_expires_at));

-- The revocation feed: seq orders events (see tokenward_record_event).
CREATE TABLE {schema}.revocations (
    seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind       text             NOT NULL CHECK (kind IN ('session', 'user', 'all')),
    sid        text,
    sub        text,
    at         double precision NOT NULL,
    expires_at double precision NOT NULL,
    reason     text             NOT NULL DEFAULT ''
);
CREATE INDEX revocations_by_expiry ON {schema}.revocations (expires_at);

-- Signing keys of the key ring; material may be encrypted at rest by the caller.
CREATE TABLE {schema}.keys (
    kid          text             PRIMARY KEY,
    alg          text             NOT NULL,
    state        text             NOT NULL CHECK (state IN ('next', 'current', 'retired')),
    material     bytea            NOT NULL,
    created_at   double precision NOT NULL,
    retire_after double precision,
    extra        jsonb            NOT NULL DEFAULT '{}'
);
"""

# Functions pin search_path so that nothing a role puts on its path can shadow the
# built-ins they call; every table reference is schema-qualified anyway.
_V1_FUNCTIONS = """
CREATE FUNCTION {schema}.tokenward_record_event(
    p_kind text, p_sid text, p_sub text, p_at double precision,
    p_expires_at double precision, p_reason text
) RETURNS bigint LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_seq bigint;
    v_payload text;
BEGIN
    -- Held until commit: events commit in seq order, so a cursor never skips one.
    PERFORM pg_advisory_xact_lock({event_lock});
    INSERT INTO {schema}.revocations (kind, sid, sub, at, expires_at, reason)
    VALUES (p_kind, p_sid, p_sub, p_at, p_expires_at, p_reason)
    RETURNING seq INTO v_seq;
    v_payload := json_build_object(
        'seq', v_seq, 'kind', p_kind, 'sid', p_sid, 'sub', p_sub,
        'at', p_at, 'expires_at', p_expires_at, 'reason', p_reason)::text;
    -- NOTIFY payloads are limited to 8000 bytes; listeners fetch long events by seq.
    IF octet_length(v_payload) > 7900 THEN
        v_payload := json_build_object('seq', v_seq)::text;
    END IF;
    PERFORM pg_notify({channel}, v_payload);
    RETURN v_seq;
END
$fn$;

CREATE TYPE {schema}.rotate_result AS (
    status text, sealed bytea,
    sid text, sub text, created_at double precision, last_used_at double precision,
    idle_expires_at double precision, absolute_expires_at double precision,
    generation bigint, scope text, client_id text, user_agent text, ip text,
    revoked_at double precision, revoked_reason text
);

-- The decision table of SessionStore.rotate, evaluated under the session's row lock.
CREATE FUNCTION {schema}.tokenward_rotate(
    p_sid text, p_generation bigint, p_presented bytea, p_successor bytea, p_sealed bytea,
    p_now double precision, p_idle_expires_at double precision, p_grace double precision,
    p_event_expires_at double precision
) RETURNS {schema}.rotate_result
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    r {schema}.sessions%ROWTYPE;
    v_status text;
    v_sealed bytea;
BEGIN
    SELECT * INTO r FROM {schema}.sessions AS s WHERE s.sid = p_sid FOR UPDATE;
    IF NOT FOUND THEN
        RETURN ROW('unknown', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                   NULL, NULL, NULL, NULL)::{schema}.rotate_result;
    END IF;
    IF r.revoked_at IS NOT NULL THEN
        v_status := 'revoked';
    ELSIF p_now >= r.idle_expires_at OR p_now >= r.absolute_expires_at THEN
        v_status := 'expired';
    ELSIF p_generation = r.generation AND p_presented = r.current_hash THEN
        UPDATE {schema}.sessions AS s
           SET generation = s.generation + 1, previous_hash = s.current_hash,
               current_hash = p_successor, sealed = p_sealed, rotated_at = p_now,
               last_used_at = p_now, idle_expires_at = p_idle_expires_at
         WHERE s.sid = p_sid
        RETURNING * INTO r;
        v_status := 'rotated';
        v_sealed := p_sealed;
    ELSIF p_generation = r.generation - 1 AND p_presented = r.previous_hash
          AND p_now < r.rotated_at + p_grace THEN
        v_status := 'replayed';
        v_sealed := r.sealed;
    ELSIF p_generation < r.generation THEN
        UPDATE {schema}.sessions AS s SET revoked_at = p_now, revoked_reason = 'reuse'
         WHERE s.sid = p_sid
        RETURNING * INTO r;
        PERFORM {schema}.tokenward_record_event(
            'session', r.sid, r.sub, p_now, p_event_expires_at, 'reuse');
        v_status := 'reused';
    ELSE
        RETURN ROW('unknown', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                   NULL, NULL, NULL, NULL)::{schema}.rotate_result;
    END IF;
    RETURN ROW(v_status, v_sealed, r.sid, r.sub, r.created_at, r.last_used_at,
               r.idle_expires_at, r.absolute_expires_at, r.generation, r.scope,
               r.client_id, r.user_agent, r.ip, r.revoked_at, r.revoked_reason
              )::{schema}.rotate_result;
END
$fn$;

CREATE FUNCTION {schema}.tokenward_revoke_session(
    p_sid text, p_now double precision, p_reason text, p_event_expires_at double precision
) RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_sub text;
BEGIN
    UPDATE {schema}.sessions AS s SET revoked_at = p_now, revoked_reason = p_reason
     WHERE s.sid = p_sid AND s.revoked_at IS NULL
    RETURNING s.sub INTO v_sub;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM {schema}.tokenward_record_event(
        'session', p_sid, v_sub, p_now, p_event_expires_at, p_reason);
    RETURN true;
END
$fn$;

-- p_sub NULL revokes every user's sessions and records an 'all' event.
CREATE FUNCTION {schema}.tokenward_revoke_many(
    p_sub text, p_now double precision, p_reason text, p_event_expires_at double precision
) RETURNS bigint LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_count bigint;
BEGIN
    -- Two statements rather than "p_sub IS NULL OR sub = p_sub", which a cached
    -- generic plan could only answer with a full scan.
    IF p_sub IS NULL THEN
        UPDATE {schema}.sessions AS s SET revoked_at = p_now, revoked_reason = p_reason
         WHERE s.revoked_at IS NULL
           AND p_now < s.idle_expires_at AND p_now < s.absolute_expires_at;
    ELSE
        UPDATE {schema}.sessions AS s SET revoked_at = p_now, revoked_reason = p_reason
         WHERE s.sub = p_sub AND s.revoked_at IS NULL
           AND p_now < s.idle_expires_at AND p_now < s.absolute_expires_at;
    END IF;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    PERFORM {schema}.tokenward_record_event(
        CASE WHEN p_sub IS NULL THEN 'all' ELSE 'user' END,
        NULL, p_sub, p_now, p_event_expires_at, p_reason);
    RETURN v_count;
END
$fn$;
"""

_V2_USERS = """
-- Accounts. sub is the stable subject put in tokens; username may change (update_user
-- renames) and must stay unique. COLLATE "C" compares and orders by code point: exact,
-- case-sensitive lookups, and list_users in the same order as the other backends.
-- password_hash is an argon2id PHC string, never a password.
CREATE TABLE {schema}.users (
    sub           text             PRIMARY KEY,
    username      text COLLATE "C" NOT NULL CONSTRAINT users_username_key UNIQUE,
    password_hash text             NOT NULL,
    scopes        text[]           NOT NULL DEFAULT '{}',
    admin         boolean          NOT NULL DEFAULT false,
    disabled      boolean          NOT NULL DEFAULT false,
    created_at    double precision NOT NULL,
    updated_at    double precision NOT NULL
);

-- Login throttling: one fixed window per key (an account or an address). The window
-- opens at a key's first failure and ends at window_ends; the next failure at or after
-- that opens a new one (see the store's record_failure statement).
CREATE TABLE {schema}.login_failures (
    key         text             PRIMARY KEY,
    count       bigint           NOT NULL,
    window_ends double precision NOT NULL
);
"""

# revoke_user also records one 'session' event per session it revokes (oldest first,
# before the 'user' event), so verifiers deny exactly those sids: the 'user' event's
# whole-second cutoff misses tokens issued in the second of the revocation. Same
# signature, so CREATE OR REPLACE keeps the prepared statements and grants valid.
# All the rows are locked (by the UPDATE) before the first event takes the events'
# advisory lock, as rotate and revoke_session do: taking it between row locks could
# deadlock against a rotation that holds a row and waits for the advisory lock.
_V3_REVOKE_USER_SESSION_EVENTS = """
CREATE OR REPLACE FUNCTION {schema}.tokenward_revoke_many(
    p_sub text, p_now double precision, p_reason text, p_event_expires_at double precision
) RETURNS bigint LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_count bigint;
    v_sids text[];
    v_sid text;
BEGIN
    -- Two statements rather than "p_sub IS NULL OR sub = p_sub", which a cached
    -- generic plan could only answer with a full scan.
    IF p_sub IS NULL THEN
        UPDATE {schema}.sessions AS s SET revoked_at = p_now, revoked_reason = p_reason
         WHERE s.revoked_at IS NULL
           AND p_now < s.idle_expires_at AND p_now < s.absolute_expires_at;
        GET DIAGNOSTICS v_count = ROW_COUNT;
    ELSE
        WITH revoked AS (
            UPDATE {schema}.sessions AS s SET revoked_at = p_now, revoked_reason = p_reason
             WHERE s.sub = p_sub AND s.revoked_at IS NULL
               AND p_now < s.idle_expires_at AND p_now < s.absolute_expires_at
            RETURNING s.sid, s.created_at
        )
        SELECT coalesce(array_agg(r.sid ORDER BY r.created_at, r.sid), '{}')
          INTO v_sids FROM revoked AS r;
        v_count := cardinality(v_sids);
        -- Each event is inserted and pg_notify-ed by tokenward_record_event.
        FOREACH v_sid IN ARRAY v_sids LOOP
            PERFORM {schema}.tokenward_record_event(
                'session', v_sid, p_sub, p_now, p_event_expires_at, p_reason);
        END LOOP;
    END IF;
    PERFORM {schema}.tokenward_record_event(
        CASE WHEN p_sub IS NULL THEN 'all' ELSE 'user' END,
        NULL, p_sub, p_now, p_event_expires_at, p_reason);
    RETURN v_count;
END
$fn$;
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration("sessions, revocations, keys and their functions", _V1_TABLES + _V1_FUNCTIONS),
    Migration("users and login failure counters", _V2_USERS),
    Migration(
        "revoke_user records a session event per revoked session",
        _V3_REVOKE_USER_SESSION_EVENTS,
    ),
)

_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS {schema}.schema_version (
    version     integer     PRIMARY KEY,
    description text        NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""


async def _bootstrap(conn: Connection, names: SchemaNames) -> None:
    # Checked first: CREATE SCHEMA IF NOT EXISTS needs the CREATE privilege on the
    # database even when the schema exists, and a DBA may have created it for us.
    if await conn.fetchval("SELECT to_regnamespace($1)", names.quoted) is None:
        await conn.execute(names.render("CREATE SCHEMA {schema}"))
    await conn.execute(names.render(_VERSION_TABLE))


async def schema_version(conn: Connection, names: SchemaNames) -> int:
    """The schema's version: 0 when it (or its version table) does not exist yet."""
    if await conn.fetchval("SELECT to_regclass($1)", f"{names.quoted}.schema_version") is None:
        return 0
    version = await conn.fetchval(
        names.render("SELECT coalesce(max(version), 0) FROM {schema}.schema_version")
    )
    return int(version)


async def migrate(
    conn: Connection, names: SchemaNames, migrations: Sequence[Migration] = MIGRATIONS
) -> int:
    """Bring the schema up to ``len(migrations)``, one locked transaction per step.

    Returns the version found at the end. Safe to run from many processes at once.
    """
    while True:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", names.migration_lock)
            version = await schema_version(conn, names)
            if version >= len(migrations):
                return version
            if version == 0:
                await _bootstrap(conn, names)
            migration = migrations[version]
            await conn.execute(names.render(migration.template))
            await conn.execute(
                names.render(
                    "INSERT INTO {schema}.schema_version (version, description) VALUES ($1, $2)"
                ),
                version + 1,
                migration.description,
            )
