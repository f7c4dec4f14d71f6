"""Redis session and user store: every state change is one Lua script, so it is atomic.

Data layout (``P`` is the instance's prefix; ``{...}`` are Redis Cluster hash tags)::

    P:s:{<sid>}        hash   one session: the public fields of SessionRecord, plus
                              current_hash, previous_hash, rotated_at and the opaque
                              sealed successor; TTL = its expiry + a minute of slack
    P:u:{<sub>}        zset   sids of one user, scored by created_at (oldest first)
    P:all              zset   JSON ["sid", "sub"] of every session, scored by the
                              session's expiry as last indexed (a lower bound, see purge)
    P:revocations      zset   revocation events as JSON, scored by seq
    P:revexp           zset   event seqs, scored by the event's expires_at (for purge)
    P:revseq           string the event counter (INCR gives the next seq)
    P:keys             hash   kid -> signing key record as JSON
    P:{users}          hash   username -> user record as JSON
    P:{users}:subs     hash   sub -> username (keeps subs unique, finds a renamed user)
    P:fail:{<sha256>}  hash   one login-failure window: count, and ends (the caller's
                              time); named by the SHA-256 of the throttle key, so keys
                              like "ip:127.0.0.1" or a hostile username cannot reach
                              another key, a hash tag or a glob; TTL = window + slack

Every event is also PUBLISHed as the same JSON on the channel ``P:revocations`` by the
script that records it, so live verifiers learn of it in the same atomic step, and late
joiners start from :meth:`RedisStore.revocations_since`; :meth:`RedisStore.revocation_feed`
does both.

Atomicity and round trips. Redis runs a script without interleaving any other command,
so each method that changes state sends exactly one EVALSHA (registered through
``redis.asyncio`` script objects, which reload a script after ``SCRIPT FLUSH`` or a
failover answers NOSCRIPT) and counts as one operation: ``rotate`` reads the session,
decides, writes, and for reuse revokes and records the event, all in that one call;
``revoke_user`` revokes the user's active sessions and records (and publishes) one
session event for each, then the user event, in one script too.
Reads are one command or one read-only script. Only :meth:`RedisStore.drop` loops.
A refused or reset connection means the script never ran: nothing changed. A timeout
after Redis received a script leaves its outcome unknown to this caller; for ``rotate``
that is safe, since presenting the same token again within the grace window answers
REPLAYED with the same successor.

Users and throttling follow the same rule. ``create_user`` checks both indexes and
writes both in one script; ``update_user`` finds the user by sub, refuses a rename onto
a taken name, and moves the record, all in one script, so two concurrent renames onto
one name cannot both win. ``record_failure`` is one script: it starts a new window or
increments the current one (HINCRBY), so concurrent failures from many connections are
each counted exactly once. ``failures`` is one HMGET, ``clear_failures`` one DEL.

Times are the caller's floats, stored as exact ``repr`` strings and compared in the
scripts against the ``now`` passed in, never against the server clock. TTLs only collect
garbage: they are set from the caller's times relative to the caller's ``now``
(``PEXPIRE expiry - now``), so in production a key disappears about when its session
expires, while tests with a frozen clock see the same answers as the memory store. A
revoked session keeps its TTL, so reuse of its tokens is recognised until it expires.
A failure window likewise ends at ``now + window`` as the caller counts it; its key's
TTL (the window plus slack, set when the window starts) only removes it afterwards.

Deployment: a single Redis primary (standalone, or Sentinel-managed), with
``redis://`` or ``rediss://`` URLs; everything above holds there. Redis Cluster is
supported too, with ``redis+cluster://host:port[,host:port...]`` (``rediss+cluster://``
for TLS), which :meth:`RedisStore.connect` and :func:`~tokenward.stores.open_store` turn
into a :class:`~tokenward.stores._redis_cluster.RedisClusterStore`. A cluster refuses a
script whose keys lie in more than one hash slot, and the scripts above pass more keys
than that: ``rotate`` and ``revoke_session`` the shared event keys, ``create_session``
the user and global indexes, and ``revoke_user``, ``revoke_all``, ``list_sessions`` and
``purge_expired`` reach session keys through an index. The cluster store therefore gives
every script the keys of one slot only: a session's own hash (tagged by its sid) for
everything that changes one session, so ``rotate`` stays one atomic script and one round
trip, including the revocation a reuse causes, which the script also PUBLISHes at once;
the event log moves under one tag (``P:{rev}:...``) and is written in a second,
idempotent and retried call; user-wide and global operations fan out per node. So on a
cluster, what is atomic is each session's change; recording its event, and operations
over many sessions, are not: :mod:`tokenward.stores._redis_cluster` says exactly what
can be seen between the steps and after a failure. The user scripts are cluster-safe
as they are: both user hashes share the tag ``{users}``, and a failure window is a
single key.

The store keeps only SHA-256 hashes of refresh ``jti``s and sealed bytes nobody but the
holder of the previous refresh token can open; nothing here logs them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import (
    AuthenticationError,
    AuthorizationError,
    ClusterDownError,
    ClusterError,
    RedisClusterException,
    RedisError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from tokenward.errors import ConfigurationError
from tokenward.stores._redis_lua import PUBLIC_FIELDS, SCRIPTS
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
    from redis.asyncio.cluster import RedisCluster

    from tokenward.stores._redis_feed import RedisFeed

__all__ = ["RedisStore"]

_T = TypeVar("_T")

# A key outlives its session by this much, so an application server whose clock runs a
# little behind Redis's still finds a just-expired (or revoked) session and answers
# EXPIRED or REVOKED rather than UNKNOWN.
_TTL_SLACK_MS = 60_000

# purge re-indexes live sessions whose idle expiry slid; it examines at most this many
# index entries per removed batch, so one call never blocks Redis for long.
_PURGE_SCAN_FACTOR = 16

# A failure window's TTL is capped below what PEXPIRE accepts: a script that failed after
# starting a window would leave it behind (Redis does not roll a script back), and a
# window longer than this (over a century) is forgotten early rather than refused.
_MAX_TTL_MS = 2**42

_PREFIX = re.compile(r"[A-Za-z0-9_.:-]{1,64}")

# Failures after which the command cannot have run, or its outcome is unknown to the
# caller (a timeout): reported as StoreUnavailableError. The cluster ones mean a slot
# has no reachable primary just now (failover, migration, a node down).
_UNAVAILABLE = (
    RedisConnectionError,
    RedisTimeoutError,
    OSError,
    ClusterDownError,
    TryAgainError,
)


def _num(value: float) -> str:
    """A time as the exact decimal string Redis and Lua read back to the same double."""
    value = float(value)
    if not math.isfinite(value):
        raise ValueError("store times must be finite")
    return repr(value)


def _check_prefix(prefix: str) -> None:
    if not _PREFIX.fullmatch(prefix):
        # Braces would change the hash tags, glob characters would widen drop().
        raise ConfigurationError("redis prefix must be 1-64 of [A-Za-z0-9_.:-]")


def _store_error(exc: Exception) -> StoreError:
    """The store error reported for a client failure (messages never carry the URL)."""
    if isinstance(exc, AuthenticationError | AuthorizationError):
        return StoreError("redis refused this client's credentials")
    if isinstance(exc, RedisClusterException | ClusterError):
        return StoreUnavailableError("no redis cluster node serves this now (or not a cluster)")
    if isinstance(exc, _UNAVAILABLE):
        return StoreUnavailableError("redis is unreachable or timed out")
    if isinstance(exc, ResponseError):
        return StoreError(f"redis refused a command: {exc}")
    return StoreError(f"redis client failed: {type(exc).__name__}")


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def _record(values: Sequence[bytes | str | None]) -> SessionRecord | None:
    """Build a record from an HMGET of :data:`PUBLIC_FIELDS`; None if absent."""
    field = dict(zip(PUBLIC_FIELDS, values, strict=True))
    sid, sub = _text(field["sid"]), _text(field["sub"])
    if sid is None or sub is None:
        return None
    revoked_at = field["revoked_at"]
    return SessionRecord(
        sid=sid,
        sub=sub,
        created_at=float(field["created_at"] or 0),
        last_used_at=float(field["last_used_at"] or 0),
        idle_expires_at=float(field["idle_expires_at"] or 0),
        absolute_expires_at=float(field["absolute_expires_at"] or 0),
        generation=int(field["generation"] or 0),
        scope=_text(field["scope"]) or "",
        client_id=_text(field["client_id"]),
        user_agent=_text(field["user_agent"]),
        ip=_text(field["ip"]),
        revoked_at=None if revoked_at is None else float(revoked_at),
        revoked_reason=_text(field["revoked_reason"]),
    )


def _event(raw: bytes | str) -> RevocationEvent:
    data = json.loads(raw)
    return RevocationEvent(
        seq=int(data["seq"]),
        kind=RevocationKind(data["kind"]),
        at=float(data["at"]),
        expires_at=float(data["expires_at"]),
        sid=data.get("sid"),
        sub=data.get("sub"),
        reason=data.get("reason") or "",
    )


def _key_json(key: KeyRecord) -> str:
    return json.dumps(
        {
            "kid": key.kid,
            "alg": key.alg,
            "state": key.state.value,
            "material": base64.b64encode(key.material).decode(),
            "created_at": key.created_at,
            "retire_after": key.retire_after,
            "extra": key.extra,
        },
        separators=(",", ":"),
    )


def _key_record(raw: bytes | str) -> KeyRecord:
    data = json.loads(raw)
    return KeyRecord(
        kid=data["kid"],
        alg=data["alg"],
        state=KeyState(data["state"]),
        material=base64.b64decode(data["material"]),
        created_at=float(data["created_at"]),
        retire_after=None if data["retire_after"] is None else float(data["retire_after"]),
        extra=data["extra"],
    )


def _user_json(user: UserRecord) -> str:
    # allow_nan=False: a NaN or infinite time would not compare; refuse it here.
    return json.dumps(
        {
            "sub": user.sub,
            "username": user.username,
            "password_hash": user.password_hash,
            "created_at": float(user.created_at),
            "updated_at": float(user.updated_at),
            "scopes": list(user.scopes),
            "admin": user.admin,
            "disabled": user.disabled,
        },
        separators=(",", ":"),
        allow_nan=False,
    )


def _user_record(raw: bytes | str) -> UserRecord:
    data = json.loads(raw)
    return UserRecord(
        sub=data["sub"],
        username=data["username"],
        password_hash=data["password_hash"],
        created_at=float(data["created_at"]),
        updated_at=float(data["updated_at"]),
        scopes=tuple(data["scopes"]),
        admin=bool(data["admin"]),
        disabled=bool(data["disabled"]),
    )


class RedisStore:
    """A :class:`~tokenward.stores.base.SessionStore` and
    :class:`~tokenward.stores.base.UserStore` on one Redis primary (and, through the
    subclass :meth:`connect` returns for a ``redis+cluster://`` URL, on Redis Cluster).

    ``operations`` counts the round trips this instance made (one per command, script
    call or pipeline), so benchmarks can check that a refresh costs exactly one.

    Example::

        store = await RedisStore.connect("redis://127.0.0.1:6379/0", prefix="auth")
        result = await store.rotate(rotation)
        await store.close()
    """

    _EVENT_KEYS = ("{p}:revocations", "{p}:revseq", "{p}:revexp")
    """Names of the event log's keys (events, seq counter, events by expiry)."""

    def __init__(self, client: Redis, *, prefix: str = "tokenward") -> None:
        """Wrap a ``decode_responses=False`` client; prefer :meth:`connect`."""
        self._setup(client, prefix)

    def _setup(self, client: Redis | RedisCluster, prefix: str) -> None:
        _check_prefix(prefix)
        self._redis = client
        self.prefix = prefix
        self.channel = f"{prefix}:revocations"
        """The pub/sub channel carrying every revocation event as JSON."""
        self._all = f"{prefix}:all"
        events, seq, by_expiry = (name.format(p=prefix) for name in self._EVENT_KEYS)
        self._events = (events, seq, by_expiry)
        self._keys = f"{prefix}:keys"
        self._users = (f"{prefix}:{{users}}", f"{prefix}:{{users}}:subs")
        self._scripts = {name: client.register_script(src) for name, src in SCRIPTS.items()}
        self.operations = 0

    @classmethod
    async def connect(
        cls, url: str, *, prefix: str = "tokenward", timeout: float = 2.0
    ) -> RedisStore:
        """Connect to ``url``, check the server answers and load the scripts.

        ``url`` is ``redis://host:port/db`` (``rediss://`` for TLS) for one primary, or
        ``redis+cluster://host:port[,host:port...]`` (``rediss+cluster://``) for Redis
        Cluster, which returns the cluster store (see
        :mod:`tokenward.stores._redis_cluster`).

        ``timeout`` bounds connecting and every command; failures raise
        :class:`StoreUnavailableError`. The client does not retry on its own: a retried
        script could run twice, so retrying is the caller's decision. The check and the
        script loading are one pipeline, counted as one operation.
        """
        if url.partition("://")[0].endswith("+cluster"):
            from tokenward.stores._redis_cluster import RedisClusterStore

            return await RedisClusterStore.connect(url, prefix=prefix, timeout=timeout)
        _check_prefix(prefix)
        try:
            client = Redis.from_url(
                url,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                retry=Retry(NoBackoff(), 0),
                decode_responses=False,
            )
        except ValueError:
            # The message may quote the URL, password included.
            raise ConfigurationError(
                "redis store URL must look like redis://host:port/db"
            ) from None
        store = cls(client, prefix=prefix)
        try:
            pipe = client.pipeline(transaction=False)
            for script in store._scripts.values():
                pipe.script_load(script.script)
            await store._op(pipe.execute())
        except BaseException:
            await client.aclose()
            raise
        return store

    def session_key(self, sid: str) -> str:
        """The hash holding session ``sid`` (tagged by sid for Redis Cluster)."""
        return f"{self.prefix}:s:{{{sid}}}"

    def user_key(self, sub: str) -> str:
        """The sorted set indexing ``sub``'s sessions."""
        return f"{self.prefix}:u:{{{sub}}}"

    def failure_key(self, key: str) -> str:
        """The hash counting failed logins under throttle key ``key`` (e.g. ``"ip:..."``).

        Named by the key's SHA-256: throttle keys carry client-chosen text (a username,
        an address), which must neither pick a hash tag, nor grow key names without
        bound, nor be readable from a key listing.
        """
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        return f"{self.prefix}:fail:{{{digest}}}"

    async def _op(self, call: Awaitable[_T]) -> _T:
        """Await one round trip, translating client failures into store errors."""
        self.operations += 1
        try:
            return await call
        except (RedisError, RedisClusterException, OSError) as exc:
            raise _store_error(exc) from None

    async def _script(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        return await self._op(self._scripts[name](keys=keys, args=args))

    async def _subscriber(self) -> PubSub:
        """A pub/sub connection for the revocation feed (it connects on subscribing)."""
        return self._redis.pubsub()

    async def create_session(self, session: NewSession) -> None:
        args = self._create_args(session)
        keys = [self.session_key(session.sid), self.user_key(session.sub), self._all]
        if not await self._script("create", keys, args):
            raise StoreError("session id exists already")

    @staticmethod
    def _create_args(session: NewSession) -> list[Any]:
        """ARGV of the ``create`` script: ttl, index scores and members, then the fields."""
        expires_at = min(session.idle_expires_at, session.absolute_expires_at)
        ttl_ms = max(math.ceil((expires_at - session.created_at) * 1000), 0) + _TTL_SLACK_MS
        fields: dict[str, str | bytes] = {
            "sid": session.sid,
            "sub": session.sub,
            "created_at": _num(session.created_at),
            "last_used_at": _num(session.created_at),
            "idle_expires_at": _num(session.idle_expires_at),
            "absolute_expires_at": _num(session.absolute_expires_at),
            "generation": "0",
            "scope": session.scope,
            "current_hash": session.refresh_hash,
        }
        for name in ("client_id", "user_agent", "ip"):
            value = getattr(session, name)
            if value is not None:
                fields[name] = value
        member = json.dumps([session.sid, session.sub], separators=(",", ":"))
        args: list[Any] = [ttl_ms, _num(session.created_at), session.sid, member]
        args.append(_num(expires_at))
        for name, value in fields.items():
            args += [name, value]
        return args

    async def rotate(self, rotation: Rotation) -> RotateResult:
        keys = [self.session_key(rotation.sid), *self._events]
        reply = await self._script("rotate", keys, self._rotate_args(rotation))
        return self._rotated(rotation, reply)

    def _rotate_args(self, rotation: Rotation) -> list[Any]:
        return [
            rotation.generation,
            rotation.presented_hash,
            rotation.successor_hash,
            rotation.successor_sealed,
            _num(rotation.now),
            _num(rotation.idle_expires_at),
            _num(rotation.grace),
            _num(rotation.event_expires_at),
            _TTL_SLACK_MS,
            self.channel,
            rotation.sid,
        ]

    @staticmethod
    def _rotated(rotation: Rotation, reply: Any) -> RotateResult:
        """The result of a ``rotate`` script's reply."""
        status = RotateStatus(reply[0].decode())
        if status is RotateStatus.UNKNOWN:
            return RotateResult(status)
        sealed = rotation.successor_sealed if status is RotateStatus.ROTATED else reply[1]
        return RotateResult(status, _record(reply[2]), sealed)

    async def get_session(self, sid: str) -> SessionRecord | None:
        values = await self._op(self._redis.hmget(self.session_key(sid), PUBLIC_FIELDS))
        return _record(values)

    async def list_sessions(self, sub: str, now: float) -> Sequence[SessionRecord]:
        rows = await self._script("list", [self.user_key(sub)], [f"{self.prefix}:s:"])
        records = (_record(row) for row in rows)
        return [r for r in records if r is not None and r.active(now)]

    async def revoke_session(
        self, sid: str, *, now: float, reason: str, event_expires_at: float
    ) -> bool:
        args = [_num(now), reason, _num(event_expires_at), self.channel, sid]
        keys = [self.session_key(sid), *self._events]
        return await self._script("revoke_session", keys, args) is not None

    async def revoke_user(
        self, sub: str, *, now: float, reason: str, event_expires_at: float
    ) -> int:
        args = [_num(now), reason, _num(event_expires_at), self.channel, f"{self.prefix}:s:", sub]
        return int(await self._script("revoke_user", [self.user_key(sub), *self._events], args))

    async def revoke_all(self, *, now: float, reason: str, event_expires_at: float) -> int:
        args = [_num(now), reason, _num(event_expires_at), self.channel, f"{self.prefix}:s:"]
        return int(await self._script("revoke_all", [self._all, *self._events], args))

    async def revocations_since(self, seq: int, *, now: float) -> Sequence[RevocationEvent]:
        found = self._redis.zrangebyscore(self._events[0], f"({int(seq)}", "+inf")
        raw = cast("list[bytes]", await self._op(found))
        events = (_event(item) for item in raw)
        return [e for e in events if e.expires_at > now]

    def revocation_feed(self, *, heartbeat: float = 5.0) -> RedisFeed:
        """The revocation feed for verifiers: subscribe, then snapshot, then live events.

        Each running feed holds one pool connection; a silent one is given up after
        twice ``heartbeat`` seconds (see :mod:`tokenward.stores._redis_feed`).
        """
        from tokenward.stores._redis_feed import RedisFeed

        return RedisFeed(self, heartbeat=heartbeat)

    async def purge_expired(self, *, now: float, batch: int) -> int:
        """Remove up to ``batch`` expired sessions and up to ``batch`` expired events.

        Counts a session once when its index entries go (and its hash, if its TTL has
        not removed it already), and each expired event. Live sessions whose index
        score fell behind a sliding idle expiry are re-scored, which is not counted;
        after examining ``16 * batch`` such entries a call returns early, possibly 0,
        and the next call continues.
        """
        if batch < 1:
            raise ValueError("batch must be at least 1")
        keys = [self._all, self._events[0], self._events[2]]
        args = [
            _num(now),
            batch,
            f"{self.prefix}:s:",
            f"{self.prefix}:u:",
            batch * _PURGE_SCAN_FACTOR,
        ]
        return int(await self._script("purge", keys, args))

    async def put_key(self, key: KeyRecord) -> None:
        await self._op(self._redis.hset(self._keys, key.kid, _key_json(key)))

    async def list_keys(self) -> Sequence[KeyRecord]:
        raw = await self._op(self._redis.hvals(self._keys))
        return sorted((_key_record(item) for item in raw), key=lambda k: (k.created_at, k.kid))

    async def delete_key(self, kid: str) -> bool:
        return bool(await self._op(self._redis.hdel(self._keys, kid)))

    async def create_user(self, user: UserRecord) -> None:
        args = [user.username, user.sub, _user_json(user)]
        if not await self._script("create_user", self._users, args):
            raise UserExistsError("a user with that name exists already")

    async def get_user(self, username: str) -> UserRecord | None:
        raw = await self._op(self._redis.hget(self._users[0], username))
        return None if raw is None else _user_record(raw)

    async def list_users(self) -> Sequence[UserRecord]:
        raw = await self._op(self._redis.hvals(self._users[0]))
        return sorted((_user_record(item) for item in raw), key=lambda u: u.username)

    async def update_user(self, user: UserRecord) -> bool:
        args = [user.username, user.sub, _user_json(user)]
        done = int(await self._script("update_user", self._users, args))
        if done < 0:
            raise UserExistsError("a user with that name exists already")
        return done == 1

    async def record_failure(self, key: str, *, now: float, window: float) -> int:
        ends = _num(now + window)
        span_ms = min(max(float(window) * 1000, 0.0), _MAX_TTL_MS - _TTL_SLACK_MS)
        ttl_ms = math.ceil(span_ms) + _TTL_SLACK_MS
        args = [_num(now), ends, ttl_ms]
        return int(await self._script("record_failure", [self.failure_key(key)], args))

    async def failures(self, key: str, *, now: float) -> tuple[int, float]:
        count, ends = await self._op(self._redis.hmget(self.failure_key(key), ["count", "ends"]))
        if count is not None and ends is not None and now < float(ends):
            return int(count), float(ends)
        return 0, now

    async def clear_failures(self, key: str) -> None:
        await self._op(self._redis.delete(self.failure_key(key)))

    async def drop(self) -> None:
        """Delete every key under ``prefix:`` (SCAN in batches, then UNLINK).

        Keys of another store whose prefix starts with this one plus ``:`` go too, so
        give stores sharing a server prefixes that do not nest.
        """
        cursor = 0
        while True:
            cursor, found = await self._op(
                self._redis.scan(cursor, match=f"{self.prefix}:*", count=500)
            )
            if found:
                await self._op(self._redis.unlink(*found))
            if cursor == 0:
                return

    async def close(self) -> None:
        await self._redis.aclose()
