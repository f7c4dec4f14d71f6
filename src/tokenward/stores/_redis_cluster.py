"""The Redis store on Redis Cluster: the same data, laid out so each script has one slot.

:class:`RedisClusterStore` is a :class:`~tokenward.stores.redis.RedisStore` whose
scripts are only ever given keys of one hash slot, which is all a cluster accepts. Get
one with ``RedisStore.connect("redis+cluster://h1:7000,h2:7001", prefix=...)`` or
``open_store("redis+cluster://...")``. Layout (``P`` is the prefix)::

    P:s:{<sid>}          hash   one session, exactly as on a single primary
    P:u:{<sub>}          zset   sids of one user (the slot of sub)
    P:all                zset   every session, for revoke_all and purge (its own slot)
    P:{rev}:events       zset   revocation events as JSON, scored by seq  \
    P:{rev}:seq          string the event counter                          | the event
    P:{rev}:exp          zset   event seqs, scored by expires_at           | log: one
    P:{rev}:done:<id>    string marks a revocation recorded; TTL = the     | slot
                                event's life (makes recording idempotent)  /
    P:keys, P:{users}, P:{users}:subs, P:fail:{<sha256>}: as on a single primary

What is atomic. Everything that changes one session is one script in that session's
slot, exactly as on a single primary: ``rotate`` (one round trip for a rotation, for a
replay within grace, and for the revocation a reuse causes), ``revoke_session``'s
revocation, and each session's step of ``revoke_user``, ``revoke_all`` and
``purge_expired``. So 50 concurrent refreshes of one token still see one winner and 49
replays of its successor. Users, keys and failure windows are unchanged (their keys
were cluster-safe already).

What takes a second call: recording a revocation event. The event log is one slot
shared by all sessions, so no session script can write it. On reuse, the ``rotate``
script revokes the session and PUBLISHes the event with ``seq`` 0 in its atomic step
(classic PUBLISH reaches every node's subscribers, so live verifiers deny the session
at once, even if this process dies next); the store then records the event in a second
call, which publishes it again with its ``seq`` (feeds yield both; applying an event
twice is harmless). ``revoke_session`` revokes, then records (and publishes) in a
second call. Each recording carries a marker (``s:<sid>`` for one session's
revocation, a random one per ``revoke_user`` or ``revoke_all`` call), so the store
retries it, three attempts in all, without ever recording anything twice. If every
attempt fails, the revocation stands and the caller is answered as if all went well
(``rotate`` returns REUSED, ``revoke_session`` True); the store publishes the events as
unsequenced notices if the script did not, and logs ``revocation_event_not_recorded``
at ERROR on ``tokenward.stores`` with the sids, sub, kind and reason, never token
material. The event is then missing from the log: verifiers that were not following
at the time never learn of it, and the access tokens it covered stay valid at them
until they expire (at most the access lifetime). The same holds if the process dies
between the two calls, except that a reuse was published by its script.

Several slots, several calls. ``create_session`` adds the session to the user and
global indexes first (one pipeline), then creates it (one script), so no session ever
exists that ``revoke_user`` or ``purge_expired`` cannot reach; a failure in between
leaves index entries without a session, which nothing lists or counts, and which purge
removes once the session's expiry has passed (an entry that reached the user index
alone stays in it, unseen). ``revoke_user`` reads the user index, revokes each session
in its slot (one pipeline per node, all nodes at once), then records one SESSION event
per session it revoked and the USER event in one call; ``revoke_all`` does the same over
the global index and records the ALL event. An index entry naming a session of another
user is never acted on. If some node fails, the sessions on the others are revoked and
their events recorded, then the call raises :class:`StoreUnavailableError`, which here
does not mean that nothing changed: calling again revokes the rest. ``list_sessions``
is two calls (the index, then the sessions); ``purge_expired`` reads due index entries,
deletes expired sessions in their slots, updates the indexes, then purges events in the
log's slot. ``drop`` scans every primary. Operations are counted as on a single
primary: one per command, script call or pipeline (a pipeline reaches its nodes in
parallel, a thousand commands at most).

The revocation feed subscribes on the node that holds the event log (see
:mod:`tokenward.stores._redis_feed`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import unquote, urlsplit

from redis.asyncio.client import PubSub
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisClusterException, RedisError

from tokenward.errors import ConfigurationError
from tokenward.stores._redis_lua import PUBLIC_FIELDS
from tokenward.stores.base import (
    NewSession,
    RevocationKind,
    RotateResult,
    RotateStatus,
    Rotation,
    SessionRecord,
    StoreError,
    StoreUnavailableError,
)
from tokenward.stores.redis import (
    _MAX_TTL_MS,
    _PURGE_SCAN_FACTOR,
    _TTL_SLACK_MS,
    RedisStore,
    _check_prefix,
    _num,
    _record,
    _store_error,
    _text,
)

__all__ = ["ClusterURL", "RedisClusterStore", "parse_cluster_url"]

_log = logging.getLogger("tokenward.stores")

_SCHEMES = {"redis+cluster": False, "rediss+cluster": True}

# Recording an event: attempts, and the pause before the second (doubled after).
_RECORD_ATTEMPTS = 3
_RECORD_PAUSE = 0.05

# Commands per pipeline when fanning out over many sessions (revoke_all, purge).
_CHUNK = 1000

_Event = tuple[RevocationKind, str | None, str | None]
"""An event to record: its kind, sid (SESSION only) and sub (SESSION and USER)."""


@dataclass(frozen=True, slots=True)
class ClusterURL:
    """A parsed ``redis+cluster://`` URL: the startup nodes, credentials and TLS."""

    nodes: tuple[tuple[str, int], ...]
    username: str | None = None
    password: str | None = None
    tls: bool = False

    def __repr__(self) -> str:
        # Never the password: configuration objects end up in logs.
        return f"ClusterURL(nodes={self.nodes!r}, tls={self.tls})"


def parse_cluster_url(url: str) -> ClusterURL:
    """Parse ``redis+cluster://[user:password@]host:port[,host:port...][/]``.

    ``rediss+cluster://`` is the same over TLS. The nodes are where the client starts
    (any reachable one tells it the rest); a port defaults to 6379; user and password
    are percent-decoded. A cluster has database 0 only, and no query options are taken.
    Raises :class:`ConfigurationError`, whose message never quotes the password::

        >>> parse_cluster_url("redis+cluster://10.0.0.1:7000,10.0.0.2:7000/").nodes
        (('10.0.0.1', 7000), ('10.0.0.2', 7000))
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        raise ConfigurationError("redis cluster URL is malformed") from None
    if parts.scheme not in _SCHEMES or not url.startswith(f"{parts.scheme}://"):
        raise ConfigurationError(
            "redis cluster URL must start with redis+cluster:// or rediss+cluster://"
        )
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise ConfigurationError("redis cluster URL takes no query options or fragment")
    if parts.path not in ("", "/", "/0"):
        raise ConfigurationError("a Redis Cluster has database 0 only: end the URL at /")
    userinfo, at, hosts = parts.netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    nodes = tuple(_node(text) for text in hosts.split(","))
    return ClusterURL(nodes, username, password, _SCHEMES[parts.scheme])


def _node(text: str) -> tuple[str, int]:
    """``host[:port]`` or ``[v6 address][:port]`` of one startup node."""
    if text.startswith("["):
        host, close, rest = text[1:].partition("]")
        if not close or (rest and not rest.startswith(":")):
            raise ConfigurationError("redis cluster URL: write an IPv6 node as [address]:port")
        port = rest[1:]
    else:
        host, _, port = text.partition(":")
    if not host:
        raise ConfigurationError("redis cluster URL needs host:port[,host:port...]")
    if not port:
        return host, 6379
    if not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        raise ConfigurationError(f"redis cluster URL: node {host} has an invalid port")
    return host, int(port)


def _notice(event: _Event, *, at: float, expires_at: float, reason: str) -> str:
    """An unsequenced event, as the ``rotate`` script publishes one (``seq`` 0)."""
    kind, sid, sub = event
    data: dict[str, Any] = {"seq": 0, "kind": kind.value, "at": float(at)}
    data |= {"expires_at": float(expires_at), "sid": sid, "sub": sub, "reason": reason}
    return json.dumps(data, separators=(",", ":"))


def _raise_first(results: Sequence[Any]) -> None:
    """Raise the first failure among fanned-out results (see ``_fan_out``)."""
    for result in results:
        if isinstance(result, StoreError):
            raise result


def _checked(results: list[Any]) -> list[Any]:
    """Pipelined replies, or the store error of the first command that failed."""
    for result in results:
        if isinstance(result, Exception):
            raise _store_error(result) from None
    return results


class RedisClusterStore(RedisStore):
    """A :class:`RedisStore` on Redis Cluster (the module docstring has the layout and
    what is atomic).

    Example::

        store = await RedisStore.connect("redis+cluster://10.0.0.1:7000", prefix="auth")
        result = await store.rotate(rotation)  # one script, in the session's slot
        await store.close()
    """

    _EVENT_KEYS = ("{p}:{{rev}}:events", "{p}:{{rev}}:seq", "{p}:{{rev}}:exp")

    def __init__(self, client: RedisCluster, *, prefix: str = "tokenward") -> None:
        """Wrap a ``decode_responses=False`` cluster client; prefer :meth:`connect`."""
        self._setup(client, prefix)
        self._cluster = client

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        prefix: str = "tokenward",
        timeout: float = 2.0,
        address_remap: Callable[[tuple[str, int]], tuple[str, int]] | None = None,
    ) -> RedisClusterStore:
        """Connect to the cluster at ``url`` (see :func:`parse_cluster_url`), learn its
        slots and load the scripts on every primary: one operation.

        ``timeout`` bounds connecting and every command, and the client never retries
        (a retried script could run twice), as :meth:`RedisStore.connect`.
        ``address_remap`` maps the addresses the nodes announce to the ones this
        process reaches them at (NAT, proxies, containers).
        """
        where = parse_cluster_url(url)
        _check_prefix(prefix)
        client = RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in where.nodes],
            username=where.username,
            password=where.password,
            ssl=where.tls,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            decode_responses=False,
            address_remap=address_remap,
        )
        store = cls(client, prefix=prefix)
        try:
            await store._op(store._start())
        except BaseException:
            await store.close()
            raise
        return store

    async def close(self) -> None:
        await self._cluster.aclose()
        # redis-py's aclose does nothing while the client is flagged to rediscover the
        # cluster (after a failure, until its next command): close every node anyway.
        with contextlib.suppress(RedisError, OSError):
            await self._cluster.nodes_manager.aclose()
            await self._cluster.nodes_manager.aclose("startup_nodes")

    async def _start(self) -> None:
        await self._cluster.initialize()

        async def load(node: ClusterNode) -> None:
            pipe = self._cluster.pipeline()
            for script in self._scripts.values():
                pipe.execute_command("SCRIPT LOAD", script.script, target_nodes=node)
            await pipe.execute()

        await asyncio.gather(*(load(node) for node in self._cluster.get_primaries()))

    # -- one slot at a time -----------------------------------------------------------

    async def _pipelined(self, commands: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """Send ``(key, command)`` pairs, one pipeline per node, every node at once.

        Each reply comes back in order, or the exception its command failed with: a node
        that fails does not hide what the others did. One operation per ``_CHUNK``
        commands.
        """
        results: list[Any] = []
        for start in range(0, len(commands), _CHUNK):
            chunk = commands[start : start + _CHUNK]
            by_node: dict[str, list[int]] = {}
            for i, (key, _) in enumerate(chunk):
                by_node.setdefault(self._node_name(key), []).append(i)
            self.operations += 1
            outcomes = await asyncio.gather(
                *(self._pipeline([chunk[i][1] for i in group]) for group in by_node.values()),
                return_exceptions=True,
            )
            replies: list[Any] = [None] * len(chunk)
            for group, outcome in zip(by_node.values(), outcomes, strict=True):
                if not isinstance(outcome, list | Exception):
                    raise outcome  # Cancelled: not a store failure.
                for j, i in enumerate(group):
                    replies[i] = outcome[j] if isinstance(outcome, list) else outcome
            results += replies
        return results

    async def _pipeline(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        pipe = self._cluster.pipeline()
        for command in commands:
            pipe.execute_command(*command)
        return await pipe.execute(raise_on_error=False)

    def _node_name(self, key: str) -> str:
        """The node serving ``key`` now ("" if unknown: the pipeline routes it anyway)."""
        try:
            node = self._cluster.get_node_from_key(key)
        except (RedisError, RedisClusterException):
            return ""
        return "" if node is None else node.name

    async def _fan_out(self, name: str, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """Run script ``name`` once per ``(key, ARGV)``, pipelined per node.

        Each result is the script's reply or the :class:`StoreError` it failed with.
        """
        script = self._scripts[name]

        def commands(indexes: Sequence[int]) -> list[tuple[str, Sequence[Any]]]:
            return [
                (calls[i][0], ("EVALSHA", script.sha, 1, calls[i][0], *calls[i][1]))
                for i in indexes
            ]

        results = await self._pipelined(commands(range(len(calls))))
        missing = [i for i, result in enumerate(results) if isinstance(result, NoScriptError)]
        if missing:
            # A primary lost its scripts (restart, failover, SCRIPT FLUSH): nothing ran
            # there. SCRIPT LOAD goes to every primary.
            script.sha = await self._op(self._cluster.script_load(script.script))
            for i, result in zip(missing, await self._pipelined(commands(missing)), strict=True):
                results[i] = result
        return [_store_error(r) if isinstance(r, Exception) else r for r in results]

    async def _record_events(
        self,
        marker: str,
        events: Sequence[_Event],
        *,
        at: float,
        expires_at: float,
        reason: str,
        notify_via: str | None,
    ) -> None:
        """Record ``events`` in the event log, at most once per ``marker``, retried.

        If every attempt fails the revocation still stands: publish the events as
        unsequenced notices through the node of key ``notify_via`` (None: the caller's
        script did already), and log the loss without any token material.
        """
        ttl_ms = min(max(math.ceil((expires_at - at) * 1000), 0), _MAX_TTL_MS) + _TTL_SLACK_MS
        args: list[Any] = [self.channel, ttl_ms, _num(at), _num(expires_at), reason]
        for kind, sid, sub in events:
            args += [kind.value, sid or "", sub or ""]
        keys = [f"{self.prefix}:{{rev}}:done:{marker}", *self._events]
        pause = _RECORD_PAUSE
        for attempt in range(1, _RECORD_ATTEMPTS + 1):
            try:
                await self._script("record", keys, args)
            except StoreUnavailableError:
                if attempt < _RECORD_ATTEMPTS:
                    await asyncio.sleep(pause)
                    pause *= 2
            except StoreError:
                break  # Refused: trying again would not help.
            else:
                return
        if notify_via is not None:
            notices = [_notice(e, at=at, expires_at=expires_at, reason=reason) for e in events]
            with contextlib.suppress(StoreError, RedisError, RedisClusterException):
                node = self._cluster.get_node_from_key(notify_via)
                if node is not None:
                    await self._op(self._publish(node, notices))
        _log.error(
            "revocation_event_not_recorded",
            extra={
                "kind": events[-1][0].value,
                "sids": [sid for _, sid, _ in events if sid is not None],
                "sub": next((sub for _, _, sub in events if sub is not None), None),
                "reason": reason,
            },
        )

    async def _publish(self, node: ClusterNode, messages: Sequence[str]) -> None:
        """PUBLISH ``messages`` on the channel through ``node``."""
        pipe = self._cluster.pipeline()
        for message in messages:
            pipe.execute_command("PUBLISH", self.channel, message, target_nodes=node)
        await pipe.execute()

    async def _subscriber(self) -> PubSub:
        """A pub/sub connection to the node holding the event log, whose scripts publish
        every recorded event (any node would do for classic pub/sub; this one delivers
        them first and in order). The EXISTS finds that node, and refreshes the slot map
        after a failover, before subscribing."""
        await self._op(self._cluster.exists(self._events[0]))
        try:
            node = self._cluster.get_node_from_key(self._events[0])
            return self._cluster.pubsub(node=node)
        except (RedisError, RedisClusterException):
            raise StoreUnavailableError(
                "no node of the redis cluster serves the event log"
            ) from None

    # -- the store contract -----------------------------------------------------------

    async def create_session(self, session: NewSession) -> None:
        args = self._create_args(session)
        _, created_at, sid, member, expiry = args[:5]  # See _create_args.
        user_key = self.user_key(session.sub)
        # Index first: no session exists that revoke_user or purge cannot reach.
        added = _checked(
            await self._pipelined(
                [
                    (user_key, ("ZADD", user_key, "NX", created_at, sid)),
                    (self._all, ("ZADD", self._all, "NX", expiry, member)),
                ]
            )
        )
        if await self._script("create", [self.session_key(sid)], args):
            return
        # A duplicate sid: take back the entries this call added (revoke_user checks the
        # sub anyway; purge removes what a failure here leaves).
        undo = [(user_key, ("ZREM", user_key, sid)), (self._all, ("ZREM", self._all, member))]
        undo = [command for command, was_added in zip(undo, added, strict=True) if was_added]
        if undo:
            with contextlib.suppress(StoreError):
                _checked(await self._pipelined(undo))
        raise StoreError("session id exists already")

    async def rotate(self, rotation: Rotation) -> RotateResult:
        key = self.session_key(rotation.sid)
        result = self._rotated(
            rotation, await self._script("rotate", [key], self._rotate_args(rotation))
        )
        if result.status is RotateStatus.REUSED and result.session is not None:
            # The script revoked the session and published the event unsequenced.
            await self._record_events(
                f"s:{rotation.sid}",
                [(RevocationKind.SESSION, rotation.sid, result.session.sub)],
                at=rotation.now,
                expires_at=rotation.event_expires_at,
                reason="reuse",
                notify_via=None,
            )
        return result

    async def list_sessions(self, sub: str, now: float) -> Sequence[SessionRecord]:
        keys = [self.session_key(sid) for sid in await self._index(self.user_key(sub))]
        rows = _checked(await self._pipelined([(k, ("HMGET", k, *PUBLIC_FIELDS)) for k in keys]))
        records = (_record(row) for row in rows)
        return [r for r in records if r is not None and r.sub == sub and r.active(now)]

    async def _index(self, key: str) -> list[str]:
        raw = cast("list[bytes]", await self._op(self._cluster.zrange(key, 0, -1)))
        return [item.decode() for item in raw]

    async def revoke_session(
        self, sid: str, *, now: float, reason: str, event_expires_at: float
    ) -> bool:
        key = self.session_key(sid)
        args = [_num(now), reason, _num(event_expires_at), self.channel, sid]
        sub = _text(await self._script("revoke_session", [key], args))
        if sub is None:
            return False
        await self._record_events(
            f"s:{sid}",
            [(RevocationKind.SESSION, sid, sub)],
            at=now,
            expires_at=event_expires_at,
            reason=reason,
            notify_via=key,
        )
        return True

    async def revoke_user(
        self, sub: str, *, now: float, reason: str, event_expires_at: float
    ) -> int:
        sids = await self._index(self.user_key(sub))
        revoked, failures = await self._revoke_each([(sid, sub) for sid in sids], now, reason)
        events: list[_Event] = [(RevocationKind.SESSION, sid, sub) for sid in revoked]
        events.append((RevocationKind.USER, None, sub))
        await self._revoked(events, now, event_expires_at, reason, via=self.user_key(sub))
        _raise_first(failures)
        return len(revoked)

    async def revoke_all(self, *, now: float, reason: str, event_expires_at: float) -> int:
        entries = [json.loads(member) for member in await self._index(self._all)]
        revoked, failures = await self._revoke_each(entries, now, reason)
        events: list[_Event] = [(RevocationKind.ALL, None, None)]
        await self._revoked(events, now, event_expires_at, reason, via=self._all)
        _raise_first(failures)
        return len(revoked)

    async def _revoke_each(
        self, sessions: Sequence[tuple[str, str]], now: float, reason: str
    ) -> tuple[list[str], list[StoreError]]:
        """Revoke each active ``(sid, sub)`` in its slot: the sids revoked, oldest first,
        and the failures of the nodes that could not be reached."""
        calls = [(self.session_key(sid), (_num(now), reason, sub)) for sid, sub in sessions]
        results = await self._fan_out("revoke_active", calls)
        revoked = [sid for (sid, _), result in zip(sessions, results, strict=True) if result == 1]
        return revoked, [result for result in results if isinstance(result, StoreError)]

    async def _revoked(
        self, events: list[_Event], now: float, expires_at: float, reason: str, *, via: str
    ) -> None:
        """Record the events of one revoke_user or revoke_all call (its own marker)."""
        marker = f"{events[-1][0].value}:{secrets.token_hex(16)}"  # "user:..", "all:.."
        await self._record_events(
            marker, events, at=now, expires_at=expires_at, reason=reason, notify_via=via
        )

    async def purge_expired(self, *, now: float, batch: int) -> int:
        """Remove up to ``batch`` expired sessions and up to ``batch`` expired events,
        counted as :meth:`RedisStore.purge_expired` counts them; one call takes three
        operations per round of index entries it examines, plus one for the events."""
        if batch < 1:
            raise ValueError("batch must be at least 1")
        removed, budget = 0, batch * _PURGE_SCAN_FACTOR
        while removed < batch and budget > 0:
            found = self._cluster.zrangebyscore(
                self._all, "-inf", _num(now), start=0, num=min(batch - removed, budget)
            )
            members = cast("list[bytes]", await self._op(found))
            if not members:
                break
            budget -= len(members)
            entries = [json.loads(member) for member in members]
            calls = [(self.session_key(sid), (_num(now),)) for sid, _ in entries]
            results = await self._fan_out("purge_session", calls)
            updates: list[tuple[str, Sequence[Any]]] = []
            for member, (sid, sub), result in zip(members, entries, results, strict=True):
                if result is None:  # Deleted now, or gone already (its TTL).
                    updates.append((self._all, ("ZREM", self._all, member)))
                    updates.append((self.user_key(sub), ("ZREM", self.user_key(sub), sid)))
                    removed += 1
                elif not isinstance(result, StoreError):  # Live: its expiry slid.
                    updates.append((self._all, ("ZADD", self._all, result, member)))
            _checked(await self._pipelined(updates))
            _raise_first(results)
        keys = [self._events[0], self._events[2]]
        return removed + int(await self._script("purge_events", keys, [_num(now), batch]))

    async def drop(self) -> None:
        """Delete every key under ``prefix:`` on every primary (SCAN, then UNLINK)."""
        for node in self._cluster.get_primaries():
            cursor = 0
            while True:
                scan = ("SCAN", cursor, "MATCH", f"{self.prefix}:*", "COUNT", 500)
                cursors, found = await self._op(
                    self._cluster.execute_command(*scan, target_nodes=node)
                )
                if found:
                    await self._op(self._cluster.unlink(*found))
                cursor = int(next(iter(cursors.values())))
                if cursor == 0:
                    break
