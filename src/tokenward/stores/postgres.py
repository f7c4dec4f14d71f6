"""PostgreSQL session store on asyncpg, for several auth-server instances sharing one database.

Data layout (all in one schema, ``tokenward`` by default; see
:mod:`tokenward.stores._postgres_schema` for the DDL and the migrations):

* ``sessions``: one row per session, keyed by ``sid`` and indexed by ``sub``; times are
  ``double precision`` Unix seconds; the refresh ``generation``, the SHA-256 digests of
  the current and previous refresh-token jtis (``bytea``), the time of the last
  rotation, the opaque sealed successor, the revoked state and the client metadata.
* ``revocations``: the feed, ordered by an identity ``seq``, indexed on ``expires_at``.
* ``keys``: signing keys by ``kid``; ``extra`` is ``jsonb``.
* ``users``: accounts by ``sub``, with a unique ``username`` (``COLLATE "C"``: exact,
  case-sensitive, listed in code-point order); ``scopes`` is ``text[]``. A unique
  violation on ``users``, from a create or from a rename onto a taken name, raises
  :class:`~tokenward.stores.base.UserExistsError`, and the statement wrote nothing.
* ``login_failures``: login-throttling counters, one fixed window per key (``count``,
  ``window_ends``).
* ``schema_version``: one row per applied migration.

Why every operation is atomic: each method sends exactly one SQL statement, which
PostgreSQL runs in its own transaction. The multi-step ones are PL/pgSQL functions
called by that one ``SELECT``: ``tokenward_rotate`` takes the session's row lock with
``SELECT ... FOR UPDATE`` before it decides, so concurrent rotations of one session, from
any number of connections or processes, run one after the other and each sees the
previous one's result; on reuse it revokes the session and records the event in the
same transaction. ``record_failure`` is one ``INSERT ... ON CONFLICT (key) DO UPDATE
... RETURNING``: the conflicting row is locked while its new count is computed from
the committed one, so concurrent failures from any number of connections are each
counted exactly once, and a window that ended restarts at 1. Every revocation event
is published with ``pg_notify`` on the channel ``<schema>_revocations`` inside that
transaction, so LISTEN-ing verifiers hear of it exactly when it commits (payload: see
:func:`decode_notification`; :meth:`PostgresStore.revocation_feed` follows it).

Round trips: one per method call, counted in ``operations``. asyncpg prepares a
statement the first time a connection runs it; the rotate statement is prepared when a
pool connection opens, so that every rotation, the first included, is one round trip
(any other statement costs one extra round trip the first time a connection runs it).
Pooled connections are not reset on release (no session state is ever changed), which
would otherwise cost a second round trip per call.

Failures to reach the server (refused or reset connections, timeouts, a closed pool,
a server shutting down) raise :class:`~tokenward.stores.base.StoreUnavailableError`;
a statement that did not run to its commit changed nothing. As with any networked
database, a connection lost after the commit but before the reply also raises; for a
rotation, presenting the same refresh token again within the grace window then gets
the committed successor back (REPLAYED), so a retry never finds a half-done rotation.
A server that stops answering without closing the connection is reported after at most
about twice ``timeout`` (the statement, then asyncpg's cancel request).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information

from tokenward.errors import ConfigurationError
from tokenward.stores._postgres_schema import SchemaNames, migrate
from tokenward.stores.base import (
    KeyRecord,
    KeyState,
    NewSession,
    RevocationEvent,
    RevocationKind,
    RotateResult,
    RotateStatus,
    Rotation,
    SessionRecord,
    StoreError,
    StoreUnavailableError,
    UserExistsError,
    UserRecord,
)

if TYPE_CHECKING:
    from tokenward.stores._postgres_feed import PostgresFeed

__all__ = ["PostgresStore", "decode_notification"]

Row = Mapping[str, Any]

_PG = asyncpg.exceptions
# A server that cannot be reached, hung up, timed out, is shutting down or is out of
# connections; the client-side InterfaceError also covers a closed pool.
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,  # includes TimeoutError (asyncio.TimeoutError), refused and reset sockets
    _PG.InterfaceError,
    _PG.PostgresConnectionError,
    _PG.OperatorInterventionError,
    _PG.InsufficientResourcesError,
    _PG.InternalClientError,
)
_CALLER_BUGS: tuple[type[BaseException], ...] = (_PG.DataError, _PG.ClientConfigurationError)

_SESSION_SELECT = (
    "SELECT sid, sub, created_at, last_used_at, idle_expires_at, absolute_expires_at,"
    " generation, scope, client_id, user_agent, ip, revoked_at, revoked_reason"
    " FROM {schema}.sessions"
)
_USER_SELECT = (
    "SELECT sub, username, password_hash, scopes, admin, disabled, created_at, updated_at"
    " FROM {schema}.users"
)
_ROTATE = "SELECT * FROM {schema}.tokenward_rotate($1, $2, $3, $4, $5, $6, $7, $8, $9)"


@contextlib.contextmanager
def _translate() -> Iterator[None]:
    """Map asyncpg and socket errors to store errors whose messages hold no data."""
    try:
        yield
    except _PG.UniqueViolationError as exc:
        if exc.table_name == "users":
            raise UserExistsError("a user with that name exists already") from None
        raise StoreError("a record with this key exists already") from None
    except _CALLER_BUGS as exc:
        raise StoreError(f"PostgreSQL store misuse ({type(exc).__name__})") from None
    except _UNAVAILABLE as exc:
        raise StoreUnavailableError(f"PostgreSQL is unavailable ({type(exc).__name__})") from None
    except _PG.PostgresError as exc:
        raise StoreError(f"PostgreSQL error {exc.sqlstate} ({type(exc).__name__})") from None


async def _keep_session(_connection: object) -> None:
    """Pool reset hook: nothing to undo, since the store never changes session state.

    asyncpg still rolls back an unfinished transaction before calling it.
    """


async def _prepare_rotate(sql: str, connection: Any) -> None:
    """Pool init hook: put the rotate statement in the new connection's statement cache.

    A NULL ``sid`` matches no row, so the call changes nothing and locks nothing.
    """
    await connection.fetchrow(sql, *([None] * 9))


def _session(row: Row) -> SessionRecord:
    return SessionRecord(
        sid=row["sid"],
        sub=row["sub"],
        created_at=row["created_at"],
        last_used_at=row["last_used_at"],
        idle_expires_at=row["idle_expires_at"],
        absolute_expires_at=row["absolute_expires_at"],
        generation=row["generation"],
        scope=row["scope"],
        client_id=row["client_id"],
        user_agent=row["user_agent"],
        ip=row["ip"],
        revoked_at=row["revoked_at"],
        revoked_reason=row["revoked_reason"],
    )


def _user(row: Row) -> UserRecord:
    return UserRecord(
        sub=row["sub"],
        username=row["username"],
        password_hash=row["password_hash"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        scopes=tuple(row["scopes"]),
        admin=row["admin"],
        disabled=row["disabled"],
    )


def _user_values(user: UserRecord) -> tuple[object, ...]:
    """The parameters $1..$8 of the create and update statements."""
    return (
        user.sub,
        user.username,
        user.password_hash,
        list(user.scopes),
        user.admin,
        user.disabled,
        user.created_at,
        user.updated_at,
    )


def _event(row: Mapping[str, Any]) -> RevocationEvent:
    return RevocationEvent(
        seq=row["seq"],
        kind=RevocationKind(row["kind"]),
        at=row["at"],
        expires_at=row["expires_at"],
        sid=row["sid"],
        sub=row["sub"],
        reason=row["reason"],
    )


def decode_notification(payload: str) -> RevocationEvent | int:
    """Decode a NOTIFY payload from the ``<schema>_revocations`` channel.

    Returns the event, or only its ``seq`` when the event was too large for a payload
    (then read it with ``revocations_since(seq - 1, now=...)``)::

        event = decode_notification(notification_payload)
    """
    data = json.loads(payload)
    if "kind" not in data:
        return int(data["seq"])
    return _event(data)


class PostgresStore:
    """A :class:`~tokenward.stores.base.SessionStore` and
    :class:`~tokenward.stores.base.UserStore` in PostgreSQL; open with :meth:`connect`.

    ``operations`` counts round trips to the server. Example::

        store = await PostgresStore.connect("postgresql://tokenward@db/auth")
    """

    def __init__(
        self,
        pool: Any,
        names: SchemaNames,
        timeout: float,
        *,
        connect: Callable[[], Awaitable[Any]] | None = None,
    ) -> None:
        self._pool = pool
        # Opens a connection outside the pool, for the revocation feed's LISTEN.
        self._connect = connect
        self._names = names
        self._timeout = timeout
        self.operations = 0
        render = names.render
        self._sql_create = render(
            "INSERT INTO {schema}.sessions (sid, sub, created_at, last_used_at, idle_expires_at,"
            " absolute_expires_at, current_hash, scope, client_id, user_agent, ip)"
            " VALUES ($1, $2, $3, $3, $4, $5, $6, $7, $8, $9, $10)"
        )
        self._sql_rotate = render(_ROTATE)
        self._sql_get = render(_SESSION_SELECT + " WHERE sid = $1")
        self._sql_list = render(
            _SESSION_SELECT + " WHERE sub = $1 AND revoked_at IS NULL"
            " AND $2 < idle_expires_at AND $2 < absolute_expires_at ORDER BY created_at, sid"
        )
        self._sql_revoke_session = render(
            "SELECT {schema}.tokenward_revoke_session($1, $2, $3, $4)"
        )
        self._sql_revoke_many = render("SELECT {schema}.tokenward_revoke_many($1, $2, $3, $4)")
        self._sql_since = render(
            "SELECT seq, kind, at, expires_at, sid, sub, reason FROM {schema}.revocations"
            " WHERE seq > $1 AND expires_at > $2 ORDER BY seq"
        )
        # Both deletes take at most $2 rows each and skip rows another purge holds, so
        # concurrent purgers neither wait for nor double-count each other.
        self._sql_purge = render(
            "WITH gone_sessions AS (DELETE FROM {schema}.sessions WHERE sid IN ("
            " SELECT sid FROM {schema}.sessions"
            " WHERE least(idle_expires_at, absolute_expires_at) <= $1"
            " LIMIT $2 FOR UPDATE SKIP LOCKED) RETURNING 1),"
            " gone_events AS (DELETE FROM {schema}.revocations WHERE seq IN ("
            " SELECT seq FROM {schema}.revocations WHERE expires_at <= $1"
            " LIMIT $2 FOR UPDATE SKIP LOCKED) RETURNING 1)"
            " SELECT (SELECT count(*) FROM gone_sessions) + (SELECT count(*) FROM gone_events)"
        )
        self._sql_put_key = render(
            "INSERT INTO {schema}.keys (kid, alg, state, material, created_at, retire_after,"
            " extra) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb) ON CONFLICT (kid) DO UPDATE SET"
            " alg = EXCLUDED.alg, state = EXCLUDED.state, material = EXCLUDED.material,"
            " created_at = EXCLUDED.created_at, retire_after = EXCLUDED.retire_after,"
            " extra = EXCLUDED.extra"
        )
        self._sql_list_keys = render(
            "SELECT kid, alg, state, material, created_at, retire_after, extra::text AS extra"
            " FROM {schema}.keys ORDER BY created_at, kid"
        )
        self._sql_delete_key = render("DELETE FROM {schema}.keys WHERE kid = $1 RETURNING kid")
        self._sql_create_user = render(
            "INSERT INTO {schema}.users (sub, username, password_hash, scopes, admin, disabled,"
            " created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        )
        self._sql_get_user = render(_USER_SELECT + " WHERE username = $1")
        self._sql_list_users = render(_USER_SELECT + " ORDER BY username")
        # A rename onto a taken username violates users_username_key: the statement
        # fails whole, so nothing is written.
        self._sql_update_user = render(
            "UPDATE {schema}.users SET username = $2, password_hash = $3, scopes = $4,"
            " admin = $5, disabled = $6, created_at = $7, updated_at = $8"
            " WHERE sub = $1 RETURNING sub"
        )
        # SET expressions all read the row as it was, so both CASEs test the old window.
        # The first failure of a key (or of a window) counts 1, until now + window.
        self._sql_record_failure = render(
            "INSERT INTO {schema}.login_failures AS f (key, count, window_ends)"
            " VALUES ($1, 1, $2::double precision + $3::double precision)"
            " ON CONFLICT (key) DO UPDATE SET"
            " count = CASE WHEN f.window_ends <= $2 THEN 1 ELSE f.count + 1 END,"
            " window_ends = CASE WHEN f.window_ends <= $2 THEN EXCLUDED.window_ends"
            " ELSE f.window_ends END"
            " RETURNING f.count"
        )
        self._sql_failures = render(
            "SELECT count, window_ends FROM {schema}.login_failures"
            " WHERE key = $1 AND window_ends > $2"
        )
        self._sql_clear_failures = render("DELETE FROM {schema}.login_failures WHERE key = $1")

    @classmethod
    async def connect(
        cls,
        dsn: str,
        *,
        schema: str = "tokenward",
        min_size: int = 1,
        max_size: int = 10,
        timeout: float = 5.0,
        migrate_timeout: float = 60.0,
    ) -> PostgresStore:
        """Migrate ``schema`` to the current version, then open a connection pool.

        ``timeout`` bounds connecting, acquiring a pooled connection and each statement;
        ``migrate_timeout`` each migration statement (which may wait for another process
        migrating the same schema). Never logs or repeats the DSN.
        """
        names = SchemaNames(schema)
        if not 0 <= min_size <= max_size or max_size < 1:
            raise ConfigurationError("pool sizes must satisfy 0 <= min_size <= max_size, 1 <= max")
        if timeout <= 0 or migrate_timeout <= 0:
            raise ConfigurationError("timeouts must be positive")
        with _translate():
            connection = await asyncpg.connect(
                dsn, timeout=timeout, command_timeout=migrate_timeout
            )
            try:
                await migrate(connection, names)
            finally:
                with contextlib.suppress(*_UNAVAILABLE):
                    await connection.close(timeout=timeout)
            pool = await asyncpg.create_pool(
                dsn,
                min_size=min_size,
                max_size=max_size,
                timeout=timeout,
                command_timeout=timeout,
                init=partial(_prepare_rotate, names.render(_ROTATE)),
                reset=_keep_session,
            )

        async def connect_listener() -> Any:  # A closure: its repr never shows the DSN.
            return await asyncpg.connect(dsn, timeout=timeout, command_timeout=timeout)

        return cls(pool, names, timeout, connect=connect_listener)

    @property
    def schema(self) -> str:
        """The schema holding this store's tables."""
        return self._names.schema

    @property
    def channel(self) -> str:
        """The LISTEN/NOTIFY channel on which revocation events are published."""
        return self._names.channel

    async def _call(self, method: str, sql: str, *args: object) -> Any:
        """Send one statement on a pooled connection: exactly one round trip."""
        self.operations += 1
        with _translate():
            async with self._pool.acquire(timeout=self._timeout) as connection:
                return await getattr(connection, method)(sql, *args)

    async def create_session(self, session: NewSession) -> None:
        await self._call(
            "execute",
            self._sql_create,
            session.sid,
            session.sub,
            session.created_at,
            session.idle_expires_at,
            session.absolute_expires_at,
            session.refresh_hash,
            session.scope,
            session.client_id,
            session.user_agent,
            session.ip,
        )

    async def rotate(self, rotation: Rotation) -> RotateResult:
        row: Row = await self._call(
            "fetchrow",
            self._sql_rotate,
            rotation.sid,
            rotation.generation,
            rotation.presented_hash,
            rotation.successor_hash,
            rotation.successor_sealed,
            rotation.now,
            rotation.idle_expires_at,
            rotation.grace,
            rotation.event_expires_at,
        )
        session = _session(row) if row["sid"] is not None else None
        return RotateResult(RotateStatus(row["status"]), session, row["sealed"])

    async def get_session(self, sid: str) -> SessionRecord | None:
        row: Row | None = await self._call("fetchrow", self._sql_get, sid)
        return _session(row) if row is not None else None

    async def list_sessions(self, sub: str, now: float) -> Sequence[SessionRecord]:
        rows: list[Row] = await self._call("fetch", self._sql_list, sub, now)
        return [_session(row) for row in rows]

    async def revoke_session(
        self, sid: str, *, now: float, reason: str, event_expires_at: float
    ) -> bool:
        sql = self._sql_revoke_session
        return bool(await self._call("fetchval", sql, sid, now, reason, event_expires_at))

    async def revoke_user(
        self, sub: str, *, now: float, reason: str, event_expires_at: float
    ) -> int:
        sql = self._sql_revoke_many
        return int(await self._call("fetchval", sql, sub, now, reason, event_expires_at))

    async def revoke_all(self, *, now: float, reason: str, event_expires_at: float) -> int:
        sql = self._sql_revoke_many
        return int(await self._call("fetchval", sql, None, now, reason, event_expires_at))

    async def revocations_since(self, seq: int, *, now: float) -> Sequence[RevocationEvent]:
        rows: list[Row] = await self._call("fetch", self._sql_since, seq, now)
        return [_event(row) for row in rows]

    def revocation_feed(self, *, heartbeat: float = 5.0) -> PostgresFeed:
        """The revocation feed for verifiers: LISTEN, then snapshot, then notifications.

        Each running feed holds one connection outside the pool; a silent one is
        checked every ``heartbeat`` seconds (see :mod:`tokenward.stores._postgres_feed`).
        Needs a store opened with :meth:`connect`.
        """
        from tokenward.stores._postgres_feed import PostgresFeed

        if self._connect is None:
            raise ConfigurationError("the revocation feed needs a store opened by connect()")
        return PostgresFeed(self, self._connect, heartbeat=heartbeat, timeout=self._timeout)

    async def purge_expired(self, *, now: float, batch: int) -> int:
        if batch < 1:
            raise ConfigurationError("purge batch must be at least 1")
        return int(await self._call("fetchval", self._sql_purge, now, batch))

    async def put_key(self, key: KeyRecord) -> None:
        await self._call(
            "execute",
            self._sql_put_key,
            key.kid,
            key.alg,
            key.state.value,
            key.material,
            key.created_at,
            key.retire_after,
            json.dumps(key.extra),
        )

    async def list_keys(self) -> Sequence[KeyRecord]:
        rows: list[Row] = await self._call("fetch", self._sql_list_keys)
        return [
            KeyRecord(
                kid=row["kid"],
                alg=row["alg"],
                state=KeyState(row["state"]),
                material=row["material"],
                created_at=row["created_at"],
                retire_after=row["retire_after"],
                extra=json.loads(row["extra"]),
            )
            for row in rows
        ]

    async def delete_key(self, kid: str) -> bool:
        return await self._call("fetchval", self._sql_delete_key, kid) is not None

    async def create_user(self, user: UserRecord) -> None:
        await self._call("execute", self._sql_create_user, *_user_values(user))

    async def get_user(self, username: str) -> UserRecord | None:
        row: Row | None = await self._call("fetchrow", self._sql_get_user, username)
        return _user(row) if row is not None else None

    async def list_users(self) -> Sequence[UserRecord]:
        rows: list[Row] = await self._call("fetch", self._sql_list_users)
        return [_user(row) for row in rows]

    async def update_user(self, user: UserRecord) -> bool:
        sql = self._sql_update_user
        return await self._call("fetchval", sql, *_user_values(user)) is not None

    async def record_failure(self, key: str, *, now: float, window: float) -> int:
        return int(await self._call("fetchval", self._sql_record_failure, key, now, window))

    async def failures(self, key: str, *, now: float) -> tuple[int, float]:
        row: Row | None = await self._call("fetchrow", self._sql_failures, key, now)
        return (int(row["count"]), row["window_ends"]) if row is not None else (0, now)

    async def clear_failures(self, key: str) -> None:
        await self._call("execute", self._sql_clear_failures, key)

    async def drop(self) -> None:
        """Drop this store's schema with everything in it (tests use it for isolation)."""
        await self._call("execute", self._names.render("DROP SCHEMA IF EXISTS {schema} CASCADE"))

    async def close(self) -> None:
        """Close the pool; connections that do not close within ``timeout`` are cut."""
        try:
            await asyncio.wait_for(self._pool.close(), self._timeout)
        except (*_UNAVAILABLE, _PG.PostgresError):
            self._pool.terminate()
