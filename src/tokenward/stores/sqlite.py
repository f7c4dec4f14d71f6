"""The embedded default store: one SQLite file, shared by every process on a host.

Data layout (see :mod:`tokenward.stores._sqlite_schema` for the DDL and migrations):

* ``sessions``: one row per session, keyed by ``sid``, holding the public
  :class:`~tokenward.stores.base.SessionRecord` fields plus the SHA-256 digests of the
  current and previous refresh-token ``jti``, the time of the last rotation and the
  sealed successor pair. Indexed on ``(sub, created_at)`` for listing and revoking a
  user's sessions, and on ``min(idle_expires_at, absolute_expires_at)`` for purging.
* ``revocations``: the revocation feed. ``seq`` is an ``AUTOINCREMENT`` rowid, so it
  only grows and is never reused; verifiers poll it with one ``seq > ?`` range search
  on the rowid per interval (DESIGN.md, "Revocation without per-request I/O").
* ``signing_keys``: the key ring, keyed by ``kid``.
* ``users``: accounts, keyed by ``sub``, with a unique index on ``username`` (exact,
  case-sensitive); ``scopes`` is a JSON array. Unique violations become
  :class:`~tokenward.stores.base.UserExistsError`.
* ``login_failures``: the login-throttling counters, one fixed window per key
  (``count``, ``window_ends``); :meth:`SQLiteStore.record_failure` reads, resets or
  increments and returns the count in one ``INSERT ... ON CONFLICT DO UPDATE ...
  RETURNING``, so concurrent failures from any process are each counted once.

Why it is atomic: every method that writes runs as one ``BEGIN IMMEDIATE`` transaction
(:func:`~tokenward.stores._sqlite_schema.immediate`). ``BEGIN IMMEDIATE`` takes the
file's single write lock *before* reading, so a rotation reads the row, decides, writes
the row and, on reuse, appends the revocation event, while no other connection in any
process can write; concurrent rotations of one token line up, the first wins
(``ROTATED``) and the others see its result (``REPLAYED``). A failure anywhere rolls
the whole transaction back, so a failed call changes nothing. WAL mode lets readers
(``get_session``, the verifiers' polls) proceed while a writer holds the lock.

Round trips: each public method is one transaction (or one ``SELECT``), counted as one
operation in ``operations``. Where it runs depends on its size:

* The hot, one-row calls (``rotate``, ``create_session``, ``get_session``,
  ``revoke_session``, users, keys, login throttling) run on the calling thread, on a
  second connection whose busy timeout is zero. In WAL mode with ``synchronous=NORMAL``
  a commit appends to the WAL and does not wait for the disk, so such a call is tens of
  microseconds of CPU; handing it to a thread and back cost two to three times that.
  If another connection holds the write lock, SQLite answers ``SQLITE_BUSY`` at once,
  before anything was read or written, and the call is handed whole to the worker
  thread below, which waits for the lock like any other writer. So the event loop never
  waits for a lock.
* Calls whose size has no bound (``revoke_user``, ``revoke_all``, ``list_sessions``,
  ``list_users``, ``purge_expired``, ``revocations_since``) and the fallbacks run on the
  store's own single-thread executor, on the first connection (busy timeout as given).
* That second connection never checkpoints the WAL by itself (a checkpoint waits for
  the disk); every few hundred writes the store asks the worker thread for a passive
  checkpoint instead, and writes queue behind it on the worker until it is done, so it
  completes and the WAL starts over small, without the event loop waiting for fsync.

Failures: a database that stays locked past the busy timeout, or that cannot be opened
or written (I/O error, disk full), raises
:class:`~tokenward.stores.base.StoreUnavailableError`; other SQLite errors raise
:class:`~tokenward.stores.base.StoreError`. Messages carry SQLite's error name and text,
which never include bound values (hashes, sealed pairs, key material). Nothing is logged.

Durability: ``synchronous=NORMAL`` in WAL mode survives a crash of the application; a
power loss (or an OS crash) may undo the most recent transactions, whole and in order,
never half of one. An undone rotation makes the client's newest refresh token unknown
(``invalid_grant``: the user signs in again); an undone revocation must be repeated.

A call whose awaiting task is cancelled still runs to its end on the store's thread:
cancellation stops the waiting, not the transaction.
"""

from __future__ import annotations

import asyncio
import hmac
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from tokenward.errors import ConfigurationError
from tokenward.stores import _sqlite_schema as sql
from tokenward.stores.base import (
    KeyRecord,
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
    from tokenward.stores._sqlite_feed import SQLiteFeed

__all__ = ["SQLiteStore"]

T = TypeVar("T")
A = TypeVar("A")

# SQLite primary result codes meaning "the file cannot be used right now": BUSY and
# LOCKED (another connection holds the lock past the busy timeout), NOMEM, INTERRUPT,
# IOERR, FULL, CANTOPEN and PROTOCOL. A later retry may succeed.
_UNAVAILABLE_CODES = frozenset({5, 6, 7, 9, 10, 13, 14, 15})
# BUSY and LOCKED: the connection that never waits found the lock taken.
_BUSY_CODES = frozenset({5, 6})
# The calling thread's connection asks the worker for a passive WAL checkpoint after this
# many writes (a rotation writes a few pages; SQLite's own default is 1000 pages).
_CHECKPOINT_EVERY = 256
# Seconds between attempts to switch a new file to WAL mode (see _switch_to_wal).
_WAL_RETRY_PAUSE = 0.005
_BUSY: Any = object()
# Extended result codes of a taken key: SQLITE_CONSTRAINT_PRIMARYKEY (users.sub) and
# SQLITE_CONSTRAINT_UNIQUE (users_by_username). Other constraint failures are not the
# caller's "exists already" and stay StoreError.
_TAKEN_CODES = frozenset({1555, 2067})

# Positions in a SELECT_FOR_ROTATE row: SESSION_COLUMNS, then the chain's own columns.
_SESSION_END = len(sql.SESSION_FIELDS)
_LAST_USED, _IDLE, _ABSOLUTE, _GENERATION, _REVOKED_AT, _REVOKED_REASON = map(
    sql.SESSION_FIELDS.index,
    (
        "last_used_at",
        "idle_expires_at",
        "absolute_expires_at",
        "generation",
        "revoked_at",
        "revoked_reason",
    ),
)


class SQLiteStore:
    """A :class:`~tokenward.stores.base.SessionStore` and
    :class:`~tokenward.stores.base.UserStore` in one SQLite file.

    Open it with :meth:`open`; several stores, in one process or many, may share a file.
    ``operations`` counts store round trips (one per method call).

    Example::

        store = await SQLiteStore.open("/var/lib/tokenward/sessions.db")
        try:
            record = await store.get_session(sid)
        finally:
            await store.close()
    """

    def __init__(
        self,
        connection: sqlite3.Connection,
        executor: ThreadPoolExecutor,
        path: str,
        inline: sqlite3.Connection | None = None,
    ) -> None:
        """Wrap open, migrated connections; use :meth:`open` rather than this."""
        self._connection = connection
        self._executor = executor
        self._path = path
        self._closed = False
        self._inline = inline
        self._inline_lock = threading.Lock()
        self._inline_writes = 0
        self._checkpoints: set[asyncio.Future[None]] = set()
        self.operations = 0

    @classmethod
    async def open(cls, path: str | os.PathLike[str], *, timeout: float = 5.0) -> SQLiteStore:
        """Open (creating if needed) and migrate the database file at ``path``.

        The connection uses WAL mode, ``synchronous=NORMAL``, foreign keys, and waits up
        to ``timeout`` seconds for a lock held by another connection before a call
        raises :class:`StoreUnavailableError`. ``path`` must name a file (WAL mode needs
        one; ``:memory:`` is refused, use the memory store instead).
        """
        if not timeout > 0:
            raise ConfigurationError("the SQLite busy timeout must be positive")
        filename = os.fspath(path)
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tokenward-sqlite")
        loop = asyncio.get_running_loop()
        try:
            connection = await loop.run_in_executor(
                executor, _guarded, partial(_connect, timeout=timeout), filename
            )
            try:
                inline = await loop.run_in_executor(
                    executor, _guarded, partial(_connect_inline, timeout=timeout), filename
                )
            except BaseException:
                await loop.run_in_executor(executor, _close, connection)
                raise
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(connection, executor, filename, inline)

    @property
    def path(self) -> str:
        """The database file."""
        return self._path

    async def _call(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` on the worker thread's connection (waits for locks there)."""
        if self._closed:
            raise StoreError("the SQLite store is closed")
        self.operations += 1
        return await self._on_worker(work)

    async def _on_worker(self, work: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, _guarded, work, self._connection)

    async def _quick(self, work: Callable[[sqlite3.Connection], T], *, writes: bool) -> T:
        """Run a one-row call here when the file is free, else on the worker thread."""
        if self._closed:
            raise StoreError("the SQLite store is closed")
        self.operations += 1
        inline = self._inline
        # Another thread (its own event loop) may be using the connection: never wait.
        # While a checkpoint runs, writes queue behind it on the worker, so that it can
        # finish and the WAL can start over from its beginning.
        if (
            inline is None
            or (writes and self._checkpoints)
            or not self._inline_lock.acquire(blocking=False)
        ):
            return await self._on_worker(work)
        try:
            outcome = _attempt(work, inline)
        finally:
            self._inline_lock.release()
        if outcome is _BUSY:
            # Nothing was read or written: the lock is held elsewhere. Wait for it on
            # the worker thread, which has the busy timeout.
            return await self._on_worker(work)
        if writes:
            self._inline_writes += 1
            if self._inline_writes >= _CHECKPOINT_EVERY:
                self._inline_writes = 0
                self._request_checkpoint()
        return outcome

    def _request_checkpoint(self) -> None:
        # Fire and forget: a failed checkpoint changes nothing and is tried again later.
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, _checkpoint, self._connection)
        self._checkpoints.add(future)
        future.add_done_callback(self._checkpoint_done)

    def _checkpoint_done(self, future: asyncio.Future[None]) -> None:
        self._checkpoints.discard(future)
        if not future.cancelled():
            future.exception()  # Retrieved, so asyncio does not log it as unhandled.

    async def _query(self, statement: str, parameters: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        return await self._call(partial(_fetch_all, statement=statement, parameters=parameters))

    async def _read(self, statement: str, parameters: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        return await self._quick(
            partial(_fetch_all, statement=statement, parameters=parameters), writes=False
        )

    async def _write(self, body: Callable[[sqlite3.Connection], T]) -> T:
        return await self._call(partial(sql.immediate, body=body))

    async def _write_quick(self, body: Callable[[sqlite3.Connection], T]) -> T:
        return await self._quick(partial(sql.immediate, body=body), writes=True)

    async def create_session(self, session: NewSession) -> None:
        await self._write_quick(partial(_create_session, session=session))

    async def rotate(self, rotation: Rotation) -> RotateResult:
        return await self._write_quick(partial(_rotate, rotation=rotation))

    async def get_session(self, sid: str) -> SessionRecord | None:
        rows = await self._read(sql.SELECT_SESSION, (sid,))
        return sql.record(rows[0]) if rows else None

    async def list_sessions(self, sub: str, now: float) -> Sequence[SessionRecord]:
        rows = await self._query(sql.SELECT_ACTIVE_OF_SUB, (sub, now, now))
        return [sql.record(row) for row in rows]

    async def revoke_session(
        self, sid: str, *, now: float, reason: str, event_expires_at: float
    ) -> bool:
        return await self._write_quick(
            partial(_revoke_session, sid=sid, now=now, reason=reason, expires_at=event_expires_at)
        )

    async def revoke_user(
        self, sub: str, *, now: float, reason: str, event_expires_at: float
    ) -> int:
        return await self._write(
            partial(_revoke_many, sub=sub, now=now, reason=reason, expires_at=event_expires_at)
        )

    async def revoke_all(self, *, now: float, reason: str, event_expires_at: float) -> int:
        return await self._write(
            partial(_revoke_many, sub=None, now=now, reason=reason, expires_at=event_expires_at)
        )

    async def revocations_since(self, seq: int, *, now: float) -> Sequence[RevocationEvent]:
        rows = await self._query(sql.REVOCATIONS_SINCE, (seq, now))
        return [sql.event(row) for row in rows]

    def revocation_feed(self, *, poll_interval: float = 1.0) -> SQLiteFeed:
        """The revocation feed for verifiers: one query every ``poll_interval`` seconds.

        Events reach a verifier within that interval (see
        :mod:`tokenward.stores._sqlite_feed`); requests never query the file.
        """
        from tokenward.stores._sqlite_feed import SQLiteFeed

        return SQLiteFeed(self, poll_interval=poll_interval)

    async def purge_expired(self, *, now: float, batch: int) -> int:
        # SQLite reads a negative LIMIT as "no limit": refuse it rather than delete all.
        if batch < 1:
            raise ConfigurationError("the purge batch must be at least 1")
        return await self._write(partial(_purge, now=now, batch=batch))

    async def put_key(self, key: KeyRecord) -> None:
        await self._write_quick(
            partial(_execute, statement=sql.PUT_KEY, parameters=sql.key_row(key))
        )

    async def list_keys(self) -> Sequence[KeyRecord]:
        rows = await self._read(sql.LIST_KEYS, ())
        return [sql.key(row) for row in rows]

    async def delete_key(self, kid: str) -> bool:
        deleted = await self._write_quick(
            partial(_execute, statement=sql.DELETE_KEY, parameters=(kid,))
        )
        return deleted > 0

    async def create_user(self, user: UserRecord) -> None:
        await self._write_quick(partial(_write_user, statement=sql.INSERT_USER, user=user))

    async def get_user(self, username: str) -> UserRecord | None:
        rows = await self._read(sql.SELECT_USER, (username,))
        return sql.user(rows[0]) if rows else None

    async def list_users(self) -> Sequence[UserRecord]:
        rows = await self._query(sql.LIST_USERS, ())
        return [sql.user(row) for row in rows]

    async def update_user(self, user: UserRecord) -> bool:
        updated = await self._write_quick(
            partial(_write_user, statement=sql.UPDATE_USER, user=user)
        )
        return updated > 0

    async def record_failure(self, key: str, *, now: float, window: float) -> int:
        return await self._write_quick(partial(_record_failure, key=key, now=now, window=window))

    async def failures(self, key: str, *, now: float) -> tuple[int, float]:
        rows = await self._read(sql.SELECT_FAILURES, (key,))
        if rows:
            count, ends = rows[0]
            if now < ends:
                return count, ends
        return 0, now

    async def clear_failures(self, key: str) -> None:
        await self._write_quick(partial(_execute, statement=sql.CLEAR_FAILURES, parameters=(key,)))

    async def _set_interrupted(self, on: bool) -> None:
        """Make every later call fail inside SQLite (``SQLITE_INTERRUPT``), or stop that.

        For outage simulations (``tokenward bench``). The progress handler is set on each
        connection between two calls, never during one: a handler set while a
        transaction runs would make its ``ROLLBACK`` fail too and leave it open.
        """
        handler = (lambda: 1) if on else None
        inline = self._inline
        if inline is not None:
            with self._inline_lock:
                inline.set_progress_handler(handler, 1)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(
            self._executor, self._connection.set_progress_handler, handler, 1
        )

    async def close(self) -> None:
        """Close the connections and stop the store's thread; calling it again does nothing."""
        if self._closed:
            return
        self._closed = True
        inline, self._inline = self._inline, None
        loop = asyncio.get_running_loop()
        try:
            if inline is not None:
                with self._inline_lock:  # Held only while a call runs on another thread.
                    inline.close()
            await loop.run_in_executor(self._executor, _guarded, _close, self._connection)
        finally:
            self._executor.shutdown(wait=False)

    async def drop(self) -> None:
        """Close the store and delete its database file (with the WAL and index files).

        For tests: other connections to the file, in this process or another, must be
        closed first.
        """
        await self.close()
        await asyncio.to_thread(_remove_files, self._path)


# Everything below runs on the store's thread, inside ``_guarded``.


def _guarded(work: Callable[[A], T], argument: A) -> T:
    """Run ``work`` and translate SQLite's exceptions into the store's, without a chain."""
    try:
        return work(argument)
    except sqlite3.Error as exc:
        error = _translate(exc)
    raise error


def _attempt(work: Callable[[A], T], argument: A) -> T:
    """As :func:`_guarded`, but return :data:`_BUSY` when the lock is held elsewhere.

    ``work`` is one statement or one :func:`~tokenward.stores._sqlite_schema.immediate`
    transaction, which rolls back on any error: after ``_BUSY`` nothing has changed.
    """
    try:
        return work(argument)
    except sqlite3.Error as exc:
        code = getattr(exc, "sqlite_errorcode", None)
        if code is not None and code & 0xFF in _BUSY_CODES:
            return _BUSY  # type: ignore[no-any-return]
        error = _translate(exc)
    raise error


def _translate(exc: sqlite3.Error) -> StoreError:
    code = getattr(exc, "sqlite_errorcode", None)
    name = getattr(exc, "sqlite_errorname", None) or type(exc).__name__
    # SQLite's messages name the failure and, at most, a table or column: never a value.
    detail = f"{name}: {exc}"
    if code is not None and code & 0xFF in _UNAVAILABLE_CODES:
        return StoreUnavailableError(f"the SQLite database is unavailable ({detail})")
    return StoreError(f"the SQLite database failed ({detail})")


def _connect(filename: str, *, timeout: float) -> sqlite3.Connection:
    # isolation_level=None: autocommit, so the only transactions are our explicit ones.
    # check_same_thread=False is safe because the single-worker executor serializes
    # every use of the connection.
    connection = sqlite3.connect(
        filename, timeout=timeout, isolation_level=None, check_same_thread=False
    )
    try:
        _configure(connection, timeout=timeout)
        sql.migrate(connection)
    except BaseException:
        connection.close()
        raise
    return connection


def _configure(connection: sqlite3.Connection, *, timeout: float) -> None:
    connection.execute(f"PRAGMA busy_timeout = {max(1, round(timeout * 1000)):d}")
    # WAL mode persists in the file; it lets readers go on while a writer holds the lock.
    mode = _switch_to_wal(connection, timeout=timeout)
    if str(mode).lower() != "wal":
        raise StoreError(f"the SQLite database cannot use WAL mode (journal mode {mode!r})")
    connection.execute("PRAGMA synchronous = NORMAL")
    connection.execute("PRAGMA foreign_keys = ON")


def _connect_inline(filename: str, *, timeout: float) -> sqlite3.Connection:
    # The event loop's connection: it never waits for a lock (busy timeout 0: BUSY at
    # once) and never checkpoints by itself (the worker does, see _checkpoint). Opened
    # after _connect, so the file exists, is in WAL mode and is migrated; set up with the
    # patient timeout (other processes may be opening or migrating the file right now),
    # and only then told never to wait.
    # check_same_thread=False: SQLiteStore._inline_lock serializes its users.
    connection = sqlite3.connect(
        filename, timeout=timeout, isolation_level=None, check_same_thread=False
    )
    try:
        connection.execute("PRAGMA synchronous = NORMAL")
        connection.execute("PRAGMA foreign_keys = ON")
        connection.execute("PRAGMA wal_autocheckpoint = 0")
        connection.execute("SELECT count(*) FROM sqlite_master").fetchall()  # loads the schema
        connection.execute("PRAGMA busy_timeout = 0")
    except BaseException:
        connection.close()
        raise
    return connection


def _checkpoint(connection: sqlite3.Connection) -> None:
    # PASSIVE: copies what it can without waiting for readers or writers.
    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


def _switch_to_wal(connection: sqlite3.Connection, *, timeout: float) -> str:
    # Leaving the rollback journal needs the file to itself, and SQLite answers BUSY at
    # once, without its busy handler, while another connection is open on it (several
    # processes opening a new file together): try again until the timeout.
    deadline = time.monotonic() + timeout
    while True:
        try:
            return str(connection.execute("PRAGMA journal_mode = WAL").fetchone()[0])
        except sqlite3.OperationalError as exc:
            code = getattr(exc, "sqlite_errorcode", None)
            if code is None or code & 0xFF not in _BUSY_CODES or time.monotonic() >= deadline:
                raise
        time.sleep(_WAL_RETRY_PAUSE)


def _close(connection: sqlite3.Connection) -> None:
    connection.close()


def _remove_files(path: str) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(path + suffix).unlink(missing_ok=True)


def _execute(connection: sqlite3.Connection, *, statement: str, parameters: tuple[Any, ...]) -> int:
    return connection.execute(statement, parameters).rowcount


def _fetch_all(
    connection: sqlite3.Connection, *, statement: str, parameters: tuple[Any, ...]
) -> list[tuple[Any, ...]]:
    return connection.execute(statement, parameters).fetchall()


def _create_session(connection: sqlite3.Connection, *, session: NewSession) -> None:
    parameters = (
        session.sid,
        session.sub,
        session.created_at,
        session.created_at,
        session.idle_expires_at,
        session.absolute_expires_at,
        session.scope,
        session.client_id,
        session.user_agent,
        session.ip,
        session.refresh_hash,
    )
    try:
        connection.execute(sql.INSERT_SESSION, parameters)
    except sqlite3.IntegrityError:
        raise StoreError("session id exists already") from None


def _rotate(connection: sqlite3.Connection, *, rotation: Rotation) -> RotateResult:
    """The rules of :meth:`SessionStore.rotate`, in its order, under the write lock."""
    row = connection.execute(sql.SELECT_FOR_ROTATE, (rotation.sid,)).fetchone()
    if row is None:
        return RotateResult(RotateStatus.UNKNOWN)
    # The rules read the row; the record is built once, as the call leaves the row (a
    # record built and then copied with dataclasses.replace cost as much as the SQL).
    generation, revoked_at = row[_GENERATION], row[_REVOKED_AT]
    current_hash, previous_hash, rotated_at, sealed = row[_SESSION_END:]
    now = rotation.now
    if revoked_at is not None:
        return RotateResult(RotateStatus.REVOKED, sql.record(row))
    if now >= row[_IDLE] or now >= row[_ABSOLUTE]:
        return RotateResult(RotateStatus.EXPIRED, sql.record(row))
    if rotation.generation == generation and hmac.compare_digest(
        rotation.presented_hash, current_hash
    ):
        connection.execute(
            sql.ADVANCE,
            (
                rotation.successor_hash,
                rotation.successor_sealed,
                now,
                now,
                rotation.idle_expires_at,
                rotation.sid,
            ),
        )
        advanced = list(row[:_SESSION_END])  # With the values ADVANCE wrote.
        advanced[_LAST_USED] = now
        advanced[_IDLE] = rotation.idle_expires_at
        advanced[_GENERATION] = generation + 1
        return RotateResult(RotateStatus.ROTATED, sql.record(advanced), rotation.successor_sealed)
    if (
        rotation.generation == generation - 1
        and previous_hash is not None
        and hmac.compare_digest(rotation.presented_hash, previous_hash)
        and rotated_at is not None
        and now < rotated_at + rotation.grace
    ):
        return RotateResult(RotateStatus.REPLAYED, sql.record(row), sealed)
    if rotation.generation < generation:
        _revoke_session(
            connection,
            sid=row[0],
            now=now,
            reason="reuse",
            expires_at=rotation.event_expires_at,
        )
        revoked = list(row[:_SESSION_END])  # With the values REVOKE_ONE wrote.
        revoked[_REVOKED_AT] = now
        revoked[_REVOKED_REASON] = "reuse"
        return RotateResult(RotateStatus.REUSED, sql.record(revoked))
    return RotateResult(RotateStatus.UNKNOWN)


def _revoke_session(
    connection: sqlite3.Connection, *, sid: str, now: float, reason: str, expires_at: float
) -> bool:
    # fetchall() steps the UPDATE ... RETURNING to its end, so no statement is left
    # running when the transaction commits.
    rows = connection.execute(sql.REVOKE_ONE, (now, reason, sid)).fetchall()
    if not rows:
        return False
    connection.execute(
        sql.INSERT_EVENT, (RevocationKind.SESSION.value, sid, rows[0][0], now, expires_at, reason)
    )
    return True


def _revoke_many(
    connection: sqlite3.Connection, *, sub: str | None, now: float, reason: str, expires_at: float
) -> int:
    """Revoke ``sub``'s active sessions (everyone's if None) and record the events.

    For a user: one SESSION event per revoked session, oldest first, then one USER
    event. For everyone: one ALL event only (there may be too many sessions to list).
    """
    if sub is None:
        count = connection.execute(sql.REVOKE_ACTIVE, (now, reason, now, now)).rowcount
        kind = RevocationKind.ALL
    else:
        # The events first: they select the sessions that the UPDATE then revokes, both
        # under this transaction's write lock, so the two see exactly the same rows.
        connection.execute(
            sql.INSERT_SESSION_EVENTS_OF_SUB,
            {"sub": sub, "now": now, "expires_at": expires_at, "reason": reason},
        )
        count = connection.execute(sql.REVOKE_ACTIVE_OF_SUB, (now, reason, now, now, sub)).rowcount
        kind = RevocationKind.USER
    connection.execute(sql.INSERT_EVENT, (kind.value, None, sub, now, expires_at, reason))
    return count


def _purge(connection: sqlite3.Connection, *, now: float, batch: int) -> int:
    sessions = connection.execute(sql.PURGE_SESSIONS, (now, batch)).rowcount
    events = connection.execute(sql.PURGE_REVOCATIONS, (now, batch)).rowcount
    return sessions + events


def _write_user(connection: sqlite3.Connection, *, statement: str, user: UserRecord) -> int:
    """Insert or update (by ``sub``) a user; a name or sub already taken is UserExistsError."""
    try:
        return connection.execute(statement, sql.user_row(user)).rowcount
    except sqlite3.IntegrityError as exc:
        if getattr(exc, "sqlite_errorcode", None) in _TAKEN_CODES:
            raise UserExistsError("a user with that name exists already") from None
        raise


def _record_failure(connection: sqlite3.Connection, *, key: str, now: float, window: float) -> int:
    # fetchall() steps the UPSERT ... RETURNING to its end before the COMMIT.
    rows = connection.execute(
        sql.RECORD_FAILURE, {"key": key, "now": now, "ends": now + window}
    ).fetchall()
    count: int = rows[0][0]
    return count
