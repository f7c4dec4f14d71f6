"""SQLite-specific behaviour, against real files: WAL, migrations, locks, many processes.

The contract suite (``test_contract.py``) covers the semantics every store shares; this
module covers what only a file shared by several connections and processes can show.
"""

from __future__ import annotations

import asyncio
import hashlib
import multiprocessing
import queue
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import pytest

from tokenward.errors import ConfigurationError
from tokenward.stores._sqlite_schema import (
    INSERT_EVENT,
    INSERT_SESSION,
    MIGRATIONS,
    PURGE_REVOCATIONS,
    PURGE_SESSIONS,
    REVOCATIONS_SINCE,
    SCHEMA_VERSION,
    SELECT_ACTIVE_OF_SUB,
    SELECT_FAILURES,
    SELECT_USER,
    migrate,
)
from tokenward.stores.base import (
    KeyState,
    NewSession,
    RotateStatus,
    Rotation,
    StoreError,
    StoreUnavailableError,
    UserExistsError,
    UserRecord,
)
from tokenward.stores.sqlite import SQLiteStore

T0 = 1_800_000_000.0
IDLE = 3600.0
ABSOLUTE = 86400.0
GRACE = 10.0
ACCESS = 900.0
PROCESSES = 5
PER_PROCESS = 10
WINDOW = 60.0


def h(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


def new_session(sid: str = "s1", sub: str = "ada", *, at: float = T0) -> NewSession:
    return NewSession(
        sid=sid,
        sub=sub,
        created_at=at,
        idle_expires_at=at + IDLE,
        absolute_expires_at=at + ABSOLUTE,
        refresh_hash=h(f"{sid}-0"),
    )


def candidate(i: int, *, generation: int = 0, now: float = T0 + 60) -> Rotation:
    """Racer ``i`` presenting the generation-0 token of s1 with its own successor."""
    return Rotation(
        sid="s1",
        generation=generation,
        presented_hash=h(f"s1-{generation}"),
        successor_hash=h(f"cand-{i}"),
        successor_sealed=f"cand-{i}".encode(),
        now=now,
        idle_expires_at=now + IDLE,
        grace=GRACE,
        event_expires_at=now + ACCESS,
    )


def account(username: str = "ada", sub: str = "u-ada") -> UserRecord:
    return UserRecord(
        sub=sub,
        username=username,
        password_hash="$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
        created_at=T0,
        updated_at=T0,
        scopes=("read", "write"),
    )


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "tokenward.db"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[SQLiteStore]:
    opened = await SQLiteStore.open(db_path)
    try:
        yield opened
    finally:
        await opened.close()


@contextmanager
def raw(path: str | Path, *, timeout: float = 5.0) -> Iterator[sqlite3.Connection]:
    """A plain connection to the file, standing for another process or an operator."""
    with closing(sqlite3.connect(path, timeout=timeout, isolation_level=None)) as connection:
        yield connection


# --- File setup and migrations ------------------------------------------------------


async def test_open_uses_wal_and_records_the_schema_version(
    store: SQLiteStore, db_path: Path
) -> None:
    with raw(db_path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert SCHEMA_VERSION == len(MIGRATIONS) >= 1


async def test_connection_settings(store: SQLiteStore) -> None:
    def settings(connection: sqlite3.Connection) -> tuple[int, ...]:
        return tuple(
            connection.execute(f"PRAGMA {name}").fetchone()[0]
            for name in ("busy_timeout", "synchronous", "foreign_keys")
        )

    # synchronous 1 is NORMAL.
    assert await store._call(settings) == (5000, 1, 1)


async def test_open_twice_keeps_data_and_migrates_once(db_path: Path) -> None:
    first = await SQLiteStore.open(db_path)
    await first.create_session(new_session())
    await first.close()
    second = await SQLiteStore.open(db_path)
    try:
        record = await second.get_session("s1")
        assert record is not None
        assert record.sub == "ada"
    finally:
        await second.close()
    with raw(db_path) as connection:
        assert connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        tables = connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            " ORDER BY name"
        ).fetchall()
    assert tables == [
        ("login_failures",),
        ("revocations",),
        ("sessions",),
        ("signing_keys",),
        ("users",),
    ]


async def test_a_version_1_file_migrates_forward_with_its_sessions_intact(db_path: Path) -> None:
    # A file as the first release left it: only migration 1 (which never changes once
    # shipped), written with that release's columns, mid-session: one rotation done.
    with raw(db_path) as connection:
        assert migrate(connection, MIGRATIONS[:1]) == 1
        connection.execute(
            "INSERT INTO sessions (sid, sub, created_at, last_used_at, idle_expires_at,"
            " absolute_expires_at, generation, scope, client_id, current_hash, previous_hash,"
            " rotated_at, sealed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                *("s1", "ada", T0, T0 + 30, T0 + 30 + IDLE, T0 + ABSOLUTE, 1, "read", "cli"),
                *(h("s1-1"), h("s1-0"), T0 + 30, b"pair-1"),
            ),
        )
        connection.execute(
            "INSERT INTO revocations (kind, sid, sub, at, expires_at, reason)"
            " VALUES ('session', 's0', 'ada', ?, ?, 'logout')",
            (T0, T0 + ACCESS),
        )
        connection.execute(
            "INSERT INTO signing_keys (kid, alg, state, material, created_at)"
            " VALUES ('k1', 'EdDSA', 'current', x'00', ?)",
            (T0,),
        )
        assert connection.execute("PRAGMA user_version").fetchone()[0] == 1

    store = await SQLiteStore.open(db_path)
    try:
        with raw(db_path) as connection:
            assert connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        record = await store.get_session("s1")
        assert record is not None
        assert (record.sub, record.generation, record.scope, record.client_id) == (
            "ada",
            1,
            "read",
            "cli",
        )
        assert (record.last_used_at, record.revoked_at) == (T0 + 30, None)
        (old,) = await store.revocations_since(0, now=T0 + 31)
        assert (old.seq, old.sid, old.reason) == (1, "s0", "logout")
        assert [(k.kid, k.state) for k in await store.list_keys()] == [("k1", KeyState.CURRENT)]
        # The hidden columns survived too: the previous token replays the stored sealed
        # pair within the grace window, and the current token rotates.
        replay = await store.rotate(candidate(1, generation=0, now=T0 + 35))
        assert (replay.status, replay.sealed) == (RotateStatus.REPLAYED, b"pair-1")
        rotated = await store.rotate(candidate(2, generation=1, now=T0 + 36))
        assert (rotated.status, rotated.sealed) == (RotateStatus.ROTATED, b"cand-2")
        # And the new tables work on the migrated file; new events continue the feed.
        await store.create_user(account())
        assert await store.get_user("ada") == account()
        assert await store.record_failure("acct:ada", now=T0, window=WINDOW) == 1
        await store.revoke_session("s1", now=T0 + 37, reason="x", event_expires_at=T0 + ACCESS)
        events = await store.revocations_since(old.seq, now=T0 + 37)
        assert [(e.seq, e.sid) for e in events] == [(2, "s1")]
    finally:
        await store.close()


async def test_a_newer_schema_is_refused(db_path: Path) -> None:
    with raw(db_path) as connection:
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="newer") as info:
        await SQLiteStore.open(db_path)
    assert not isinstance(info.value, StoreUnavailableError)


def test_a_failing_migration_is_rolled_back_whole(db_path: Path) -> None:
    good = ("CREATE TABLE one (x)",)
    broken = ("CREATE TABLE two (x)", "CREATE TABLE three (x")  # syntax error
    with raw(db_path) as connection:
        with pytest.raises(sqlite3.OperationalError):
            migrate(connection, [good, broken])
        assert not connection.in_transaction
        assert connection.execute("PRAGMA user_version").fetchone()[0] == 1
        names = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
        assert names == {"one"}
        fixed = ("CREATE TABLE two (x)", "CREATE TABLE three (x)")
        assert migrate(connection, [good, fixed]) == 2
        assert migrate(connection, [good, fixed]) == 2  # idempotent


async def test_open_refuses_a_non_positive_timeout(db_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        await SQLiteStore.open(db_path, timeout=0)


async def test_unopenable_file_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailableError) as info:
        await SQLiteStore.open(tmp_path / "missing-directory" / "tokenward.db")
    assert info.value.__cause__ is None
    assert info.value.__context__ is None


# --- Outages: a lock held past the busy timeout ---------------------------------------


async def test_locked_database_is_unavailable_and_nothing_changes(db_path: Path) -> None:
    store = await SQLiteStore.open(db_path, timeout=0.2)
    try:
        await store.create_session(new_session())
        with raw(db_path) as blocker:
            # Another connection takes the write lock and keeps it beyond the timeout.
            blocker.execute("BEGIN EXCLUSIVE")
            started = time.monotonic()
            with pytest.raises(StoreUnavailableError) as info:
                await store.rotate(candidate(1))
            assert time.monotonic() - started < 3  # the 0.2 s timeout, not the default
            error = info.value
            assert error.code == "store_unavailable"
            assert (error.__cause__, error.__context__) == (None, None)
            assert h("s1-0").hex() not in str(error)
            for write in (
                store.revoke_session("s1", now=T0 + 1, reason="x", event_expires_at=T0 + 9),
                store.revoke_user("ada", now=T0 + 1, reason="x", event_expires_at=T0 + 9),
                store.purge_expired(now=T0 + ABSOLUTE, batch=10),
                store.create_user(account()),
                store.record_failure("acct:ada", now=T0, window=WINDOW),
            ):
                with pytest.raises(StoreUnavailableError):
                    await write
            # WAL: readers (and verifiers' polls) go on while another writer holds the lock.
            record = await store.get_session("s1")
            assert record is not None
            assert (record.generation, record.revoked_at) == (0, None)
            assert await store.revocations_since(0, now=T0) == []
            assert await store.failures("acct:ada", now=T0) == (0, T0)
            assert await store.list_users() == []
            blocker.execute("ROLLBACK")
        # Nothing was written: the same presented token rotates once the lock is gone.
        result = await store.rotate(candidate(1))
        assert result.status is RotateStatus.ROTATED
        assert result.sealed == b"cand-1"
        assert await store.record_failure("acct:ada", now=T0, window=WINDOW) == 1
    finally:
        await store.close()


async def test_event_loop_runs_while_a_call_waits_for_the_lock(db_path: Path) -> None:
    store = await SQLiteStore.open(db_path, timeout=0.5)
    try:
        await store.create_session(new_session())
        with raw(db_path) as blocker:
            blocker.execute("BEGIN EXCLUSIVE")
            waiting = asyncio.create_task(store.rotate(candidate(1)))
            ticks = 0
            while not waiting.done():
                await asyncio.sleep(0.01)
                ticks += 1
            blocker.execute("ROLLBACK")
        with pytest.raises(StoreUnavailableError):
            waiting.result()
        assert ticks >= 5
    finally:
        await store.close()


async def test_a_call_finding_the_lock_taken_waits_on_the_worker_then_succeeds(
    db_path: Path,
) -> None:
    # One-row calls run on the event loop's connection, which never waits: the lock held
    # elsewhere sends the whole call to the worker thread, which waits for it.
    store = await SQLiteStore.open(db_path, timeout=5)
    try:
        await store.create_session(new_session())
        with raw(db_path) as blocker:
            blocker.execute("BEGIN IMMEDIATE")
            waiting = asyncio.create_task(store.rotate(candidate(1)))
            ticks = 0
            while ticks < 30:  # 0.3 s: the loop runs while the call waits
                await asyncio.sleep(0.01)
                ticks += 1
            assert not waiting.done()
            blocker.execute("ROLLBACK")
        result = await asyncio.wait_for(waiting, 5)
        assert result.status is RotateStatus.ROTATED
        record = await store.get_session("s1")
        assert record is not None
        assert record.generation == 1
        assert store.operations == 3
    finally:
        await store.close()


async def test_the_event_loop_connection_never_waits_nor_checkpoints(store: SQLiteStore) -> None:
    inline = store._inline
    assert inline is not None
    settings = tuple(
        inline.execute(f"PRAGMA {name}").fetchone()[0]
        for name in ("busy_timeout", "synchronous", "foreign_keys", "wal_autocheckpoint")
    )
    assert settings == (0, 1, 1, 0)


async def test_calls_go_to_the_worker_while_another_thread_holds_the_connection(
    store: SQLiteStore,
) -> None:
    await store.create_session(new_session())
    with store._inline_lock:  # as while another thread's event loop is using it
        record = await store.get_session("s1")
        result = await store.rotate(candidate(1))
    assert record is not None
    assert record.generation == 0
    assert result.status is RotateStatus.ROTATED


async def test_the_wal_is_checkpointed_without_the_event_loop_waiting(db_path: Path) -> None:
    # The event loop's connection never checkpoints; the worker does, every few hundred
    # writes. Without that, 1,200 rotations would grow the WAL to thousands of pages.
    store = await SQLiteStore.open(db_path)
    try:
        await store.create_session(new_session())
        sealed = bytes(1400)  # a real successor's size
        for generation in range(1200):
            now = T0 + 1 + generation
            result = await store.rotate(
                Rotation(
                    sid="s1", generation=generation, presented_hash=h(f"s1-{generation}"),
                    successor_hash=h(f"s1-{generation + 1}"), successor_sealed=sealed,
                    now=now, idle_expires_at=now + IDLE, grace=GRACE,
                    event_expires_at=now + ACCESS,
                )
            )  # fmt: skip
            assert result.status is RotateStatus.ROTATED
        await asyncio.sleep(0)
        await store._on_worker(lambda connection: None)  # the queued checkpoints ran
        wal = Path(f"{db_path}-wal").stat().st_size
        page = 4096
        assert wal < 1200 * page, f"WAL of {wal} bytes: never checkpointed"
    finally:
        await store.close()


async def test_failure_inside_the_transaction_rolls_it_back(
    store: SQLiteStore, db_path: Path
) -> None:
    await store.create_session(new_session())
    await store.rotate(candidate(1))
    with raw(db_path) as connection:
        # Make the second write of a reuse (the revocation event) fail after the first
        # (revoking the session) has run.
        connection.execute(
            "CREATE TRIGGER fail_event BEFORE INSERT ON revocations"
            " BEGIN SELECT RAISE(ABORT, 'event refused'); END"
        )
        reuse = candidate(2, now=T0 + 60 + GRACE)
        with pytest.raises(StoreError):
            await store.rotate(reuse)
        record = await store.get_session("s1")
        assert record is not None
        assert (record.generation, record.revoked_at) == (1, None)
        connection.execute("DROP TRIGGER fail_event")
    assert (await store.rotate(reuse)).status is RotateStatus.REUSED
    assert len(await store.revocations_since(0, now=T0 + 61)) == 1


async def test_only_a_taken_name_or_sub_is_user_exists(store: SQLiteStore, db_path: Path) -> None:
    await store.create_user(account())
    with raw(db_path) as connection:
        # Another constraint failing (here a trigger's) is a store failure, not a taken
        # name: reporting it as UserExistsError would tell the caller the wrong thing.
        connection.execute(
            "CREATE TRIGGER refuse_users BEFORE INSERT ON users"
            " BEGIN SELECT RAISE(ABORT, 'user refused'); END"
        )
        with pytest.raises(StoreError) as info:
            await store.create_user(account("bob", "u-bob"))
        assert not isinstance(info.value, UserExistsError)
        connection.execute("DROP TRIGGER refuse_users")
    with pytest.raises(UserExistsError) as taken:
        await store.create_user(account("ada", "u-other"))
    assert taken.value.code == "user_exists"
    await store.create_user(account("bob", "u-bob"))
    assert [u.username for u in await store.list_users()] == ["ada", "bob"]


async def test_a_new_failure_window_ends_a_window_after_its_first_failure(
    store: SQLiteStore,
) -> None:
    assert await store.record_failure("ip:10.0.0.1", now=T0, window=WINDOW) == 1
    assert await store.record_failure("ip:10.0.0.1", now=T0 + 59, window=WINDOW) == 2
    assert await store.failures("ip:10.0.0.1", now=T0 + 59) == (2, T0 + WINDOW)
    # The first failure at or after the end opens a new window, ending WINDOW after it.
    assert await store.record_failure("ip:10.0.0.1", now=T0 + 70, window=WINDOW) == 1
    assert await store.failures("ip:10.0.0.1", now=T0 + 71) == (1, T0 + 70 + WINDOW)
    assert await store.record_failure("ip:10.0.0.1", now=T0 + 129, window=WINDOW) == 2
    assert await store.failures("ip:10.0.0.1", now=T0 + 70 + WINDOW) == (0, T0 + 70 + WINDOW)


# --- Many connections, many processes -----------------------------------------------


async def test_fifty_rotations_from_many_connections(db_path: Path) -> None:
    stores = [await SQLiteStore.open(db_path) for _ in range(PROCESSES)]
    try:
        await stores[0].create_session(new_session())
        results = await asyncio.gather(
            *(
                stores[p].rotate(candidate(p * PER_PROCESS + i))
                for p in range(PROCESSES)
                for i in range(PER_PROCESS)
            )
        )
        statuses = [result.status for result in results]
        assert statuses.count(RotateStatus.ROTATED) == 1
        assert statuses.count(RotateStatus.REPLAYED) == 49
        assert len({result.sealed for result in results}) == 1
    finally:
        for opened in stores:
            await opened.close()


async def test_concurrent_failures_from_many_connections_count_exactly(db_path: Path) -> None:
    stores = [await SQLiteStore.open(db_path) for _ in range(PROCESSES)]
    try:
        counts = await asyncio.gather(
            *(
                stores[p].record_failure("acct:ada", now=T0 + i, window=WINDOW)
                for p in range(PROCESSES)
                for i in range(PER_PROCESS)
            )
        )
        # Each failure was counted once: every count from 1 to 50 handed out exactly once.
        assert sorted(counts) == list(range(1, PROCESSES * PER_PROCESS + 1))
        assert await stores[0].failures("acct:ada", now=T0 + WINDOW - 1) == (50, T0 + WINDOW)
    finally:
        for opened in stores:
            await opened.close()


async def _fail(path: str, worker: int, barrier: Any) -> list[int]:
    store = await SQLiteStore.open(path, timeout=30)
    try:
        await asyncio.to_thread(barrier.wait, 60)
        counts = await asyncio.gather(
            *(
                store.record_failure("ip:10.0.0.1", now=T0, window=WINDOW)
                for _ in range(PER_PROCESS)
            )
        )
        assert store.operations == PER_PROCESS
        return list(counts)
    finally:
        await store.close()


def _fail_in_process(path: str, worker: int, barrier: Any, results: Any) -> None:
    try:
        results.put(("ok", asyncio.run(_fail(path, worker, barrier))))
    except BaseException as exc:
        results.put(("error", repr(exc)))
        raise


async def _race(path: str, worker: int, barrier: Any) -> list[tuple[str, bytes | None]]:
    store = await SQLiteStore.open(path, timeout=30)
    try:
        # Start every process's rotations together, so that they really contend.
        await asyncio.to_thread(barrier.wait, 60)
        results = await asyncio.gather(
            *(store.rotate(candidate(worker * PER_PROCESS + i)) for i in range(PER_PROCESS))
        )
        assert store.operations == PER_PROCESS
        return [(result.status.value, result.sealed) for result in results]
    finally:
        await store.close()


def _race_in_process(path: str, worker: int, barrier: Any, results: Any) -> None:
    try:
        results.put(("ok", asyncio.run(_race(path, worker, barrier))))
    except BaseException as exc:
        results.put(("error", repr(exc)))
        raise


def _open_in_process(path: str, worker: int, barrier: Any, results: Any) -> None:
    async def open_and_close() -> int:
        barrier.wait(60)
        store = await SQLiteStore.open(path, timeout=30)
        await store.close()
        return worker

    try:
        results.put(("ok", asyncio.run(open_and_close())))
    except BaseException as exc:
        results.put(("error", repr(exc)))
        raise


def run_processes(target: Any, path: Path) -> list[Any]:
    """Run ``target(path, worker, barrier, results)`` in PROCESSES fresh interpreters."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES)
    results = context.Queue()
    processes = [
        context.Process(target=target, args=(str(path), worker, barrier, results))
        for worker in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    try:
        outcomes = [results.get(timeout=120) for _ in processes]
    except queue.Empty:
        pytest.fail("a worker process did not report")
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
    errors = [detail for kind, detail in outcomes if kind != "ok"]
    assert errors == []
    assert [process.exitcode for process in processes] == [0] * PROCESSES
    return [detail for _, detail in outcomes]


async def test_fifty_rotations_from_five_processes(db_path: Path) -> None:
    setup = await SQLiteStore.open(db_path)
    try:
        await setup.create_session(new_session())
        per_process = await asyncio.to_thread(run_processes, _race_in_process, db_path)
        results = [outcome for outcomes in per_process for outcome in outcomes]
        assert len(results) == PROCESSES * PER_PROCESS == 50
        statuses = [status for status, _ in results]
        assert statuses.count(RotateStatus.ROTATED.value) == 1
        assert statuses.count(RotateStatus.REPLAYED.value) == 49
        assert len({sealed for _, sealed in results}) == 1
        record = await setup.get_session("s1")
        assert record is not None
        assert (record.generation, record.revoked_at) == (1, None)
        assert await setup.revocations_since(0, now=T0 + 61) == []
    finally:
        await setup.close()


async def test_concurrent_failures_from_five_processes_count_exactly(db_path: Path) -> None:
    setup = await SQLiteStore.open(db_path)
    try:
        per_process = await asyncio.to_thread(run_processes, _fail_in_process, db_path)
        counts = [count for counts in per_process for count in counts]
        assert sorted(counts) == list(range(1, PROCESSES * PER_PROCESS + 1))
        assert await setup.failures("ip:10.0.0.1", now=T0) == (50, T0 + WINDOW)
    finally:
        await setup.close()


async def test_processes_opening_a_new_file_together_migrate_it_once(db_path: Path) -> None:
    opened = await asyncio.to_thread(run_processes, _open_in_process, db_path)
    assert sorted(opened) == list(range(PROCESSES))
    with raw(db_path) as connection:
        assert connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_another_connection_sees_revocations(db_path: Path) -> None:
    writer = await SQLiteStore.open(db_path)
    verifier = await SQLiteStore.open(db_path)
    try:
        await writer.create_session(new_session())
        await writer.revoke_session("s1", now=T0, reason="logout", event_expires_at=T0 + ACCESS)
        events = await verifier.revocations_since(0, now=T0 + 1)
        assert [(e.sid, e.reason) for e in events] == [("s1", "logout")]
        assert await verifier.revocations_since(events[-1].seq, now=T0 + 1) == []
    finally:
        await writer.close()
        await verifier.close()


# --- Queries, counting, lifecycle ----------------------------------------------------


@pytest.mark.parametrize("analyzed", [False, True], ids=["no-statistics", "analyzed"])
@pytest.mark.parametrize(
    ("statement", "parameters", "expected"),
    [
        pytest.param(
            REVOCATIONS_SINCE, (7, T0), "USING INTEGER PRIMARY KEY (rowid>?)", id="poll-by-seq"
        ),
        pytest.param(SELECT_ACTIVE_OF_SUB, ("user1", T0, T0), "sessions_by_sub", id="list"),
        pytest.param(PURGE_SESSIONS, (T0, 100), "sessions_by_expiry", id="purge-sessions"),
        pytest.param(PURGE_REVOCATIONS, (T0, 100), "revocations_by_expiry", id="purge-events"),
        pytest.param(SELECT_USER, ("ada",), "users_by_username", id="get-user"),
        pytest.param(SELECT_FAILURES, ("acct:ada",), "login_failures", id="failures-by-key"),
    ],
)
async def test_queries_use_their_index(
    store: SQLiteStore,
    statement: str,
    parameters: tuple[Any, ...],
    expected: str,
    analyzed: bool,
) -> None:
    rows = 2000
    with raw(store.path) as connection:
        connection.execute("BEGIN")
        for i in range(rows):
            at = T0 - i * 60
            connection.execute(
                INSERT_SESSION,
                (
                    f"s{i}",
                    f"user{i % 50}",
                    at,
                    at,
                    at + IDLE,
                    at + ABSOLUTE,
                    "",
                    None,
                    None,
                    None,
                    h(f"s{i}-0"),
                ),
            )
            connection.execute(INSERT_EVENT, ("session", f"s{i}", "ada", at, at + ACCESS, "x"))
        connection.execute("COMMIT")
        if analyzed:
            # Statistics on real rows must not move the planner off the indexes.
            connection.execute("ANALYZE")
    with raw(store.path) as connection:
        plan = connection.execute(f"EXPLAIN QUERY PLAN {statement}", parameters).fetchall()
    details = " | ".join(row[-1] for row in plan)
    assert expected in details
    assert "SCAN" not in details


async def test_seq_is_never_reused_after_a_purge(store: SQLiteStore) -> None:
    await store.create_session(new_session())
    await store.revoke_session("s1", now=T0, reason="x", event_expires_at=T0 + 1)
    (first,) = await store.revocations_since(0, now=T0)
    assert await store.purge_expired(now=T0 + 1, batch=10) == 1
    await store.revoke_all(now=T0 + 2, reason="y", event_expires_at=T0 + 900)
    (second,) = await store.revocations_since(0, now=T0 + 2)
    # A verifier whose cursor is at the purged event must still see the new one.
    assert second.seq > first.seq
    assert await store.revocations_since(first.seq, now=T0 + 2) == [second]


async def test_each_call_is_one_operation(store: SQLiteStore) -> None:
    await store.create_session(new_session())
    before = store.operations
    await store.rotate(candidate(1))
    assert store.operations == before + 1
    await store.rotate(candidate(2))  # REPLAYED
    await store.revoke_user("ada", now=T0 + 61, reason="x", event_expires_at=T0 + 900)
    assert store.operations == before + 3


async def test_each_user_call_is_one_operation(store: SQLiteStore) -> None:
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: store.create_user(account()),
        lambda: store.get_user("ada"),
        store.list_users,
        lambda: store.update_user(account("ada2")),
        lambda: store.record_failure("acct:ada", now=T0, window=WINDOW),
        lambda: store.failures("acct:ada", now=T0),
        lambda: store.clear_failures("acct:ada"),
    ]
    for number, call in enumerate(calls, start=1):
        await call()
        assert store.operations == number
    # A refused write is one round trip too, and the rename stuck.
    with pytest.raises(UserExistsError):
        await store.create_user(account("ada2", "u-other"))
    assert store.operations == len(calls) + 1
    assert [u.sub for u in await store.list_users()] == ["u-ada"]


async def test_purge_refuses_a_non_positive_batch(store: SQLiteStore) -> None:
    # SQLite would read LIMIT -1 as "no limit": one unbounded delete.
    for batch in (0, -1):
        with pytest.raises(ConfigurationError):
            await store.purge_expired(now=T0, batch=batch)


async def test_closed_store_refuses_calls(db_path: Path) -> None:
    store = await SQLiteStore.open(db_path)
    await store.close()
    await store.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        await store.get_session("s1")


async def test_drop_deletes_the_files(db_path: Path) -> None:
    store = await SQLiteStore.open(db_path)
    await store.create_session(new_session())
    assert db_path.exists()
    await store.drop()
    assert list(db_path.parent.iterdir()) == []
    await store.close()
