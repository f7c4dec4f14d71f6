"""The Lua scripts behind :mod:`tokenward.stores.redis`, one per state change.

Redis runs each script to completion before any other command, so a script is the unit
of atomicity: it reads, decides and writes with nothing interleaved. The scripts compare
times as doubles parsed from the exact ``repr`` strings the Python side sends, and they
write those same strings back, so no time is ever rounded.

Conventions shared by the scripts that record a revocation event: ``KEYS[2]``,
``KEYS[3]`` and ``KEYS[4]`` are the events sorted set, the sequence counter and the
events-by-expiry sorted set; the event JSON is built by hand so that times stay exact
JSON numbers (``cjson`` would print them with 14 significant digits).

On Redis Cluster (:mod:`tokenward.stores._redis_cluster`) a script may declare only keys
of one hash slot. The session scripts (``create``, ``rotate``, ``revoke_session``) then
get the session key alone: ``create`` leaves the indexes to the caller, ``rotate``
PUBLISHes a reuse as an unsequenced notice (``"seq":0``) instead of recording it, and
``revoke_session`` records nothing; the caller records the event next with ``record``,
whose keys share the tag ``{rev}``. ``revoke_active``, ``purge_session`` and
``purge_events`` are the per-slot steps of ``revoke_user``, ``revoke_all`` and ``purge``.
Given every key, the scripts behave as they always have on a single primary.

The user scripts treat a user record as an opaque JSON string built by the Python side
(so its times stay exact too); they only maintain the two indexes, by username and by
sub, that make both unique. The failure counter keeps the caller's window end as the
exact string it was sent, for the same reason.
"""

from __future__ import annotations

__all__ = ["PUBLIC_FIELDS", "SCRIPTS"]

PUBLIC_FIELDS = (
    "sid",
    "sub",
    "created_at",
    "last_used_at",
    "idle_expires_at",
    "absolute_expires_at",
    "generation",
    "scope",
    "client_id",
    "user_agent",
    "ip",
    "revoked_at",
    "revoked_reason",
)
"""The session hash fields a :class:`~tokenward.stores.base.SessionRecord` is built from;
the refresh hashes and the sealed successor never leave Redis except through rotate."""

_PRELUDE = (
    "local PUBLIC = {" + ", ".join(f"'{name}'" for name in PUBLIC_FIELDS) + "}\n"
    r"""
local function record(key)
  return redis.call('HMGET', key, unpack(PUBLIC))
end

local function event(seq, kind, at, expires_at, sid, sub, reason)
  local function str(s) if s then return cjson.encode(s) end return 'null' end
  return '{"seq":' .. string.format('%d', seq) .. ',"kind":"' .. kind
    .. '","at":' .. at .. ',"expires_at":' .. expires_at .. ',"sid":' .. str(sid)
    .. ',"sub":' .. str(sub) .. ',"reason":' .. str(reason) .. '}'
end

local function emit(channel, kind, at, expires_at, sid, sub, reason)
  local seq = redis.call('INCR', KEYS[3])
  local payload = event(seq, kind, at, expires_at, sid, sub, reason)
  redis.call('ZADD', KEYS[2], seq, payload)
  redis.call('ZADD', KEYS[4], expires_at, string.format('%d', seq))
  redis.call('PUBLISH', channel, payload)
end

-- Revoke the session at key if it is active at now; true when it was.
local function revoke_if_active(key, now, at, reason)
  local s = redis.call('HMGET', key, 'revoked_at', 'idle_expires_at', 'absolute_expires_at')
  if s[2] and not s[1] and now < tonumber(s[2]) and now < tonumber(s[3]) then
    redis.call('HSET', key, 'revoked_at', at, 'revoked_reason', reason)
    return true
  end
  return false
end

-- Delete the session at key if it is gone or expired at now (false); else return its
-- expiry, the earlier of the two, for the caller to re-index it with.
local function purge_session(key, now)
  local e = redis.call('HMGET', key, 'idle_expires_at', 'absolute_expires_at')
  if not e[1] or now >= tonumber(e[1]) or now >= tonumber(e[2]) then
    redis.call('DEL', key)
    return false
  end
  if tonumber(e[2]) < tonumber(e[1]) then return e[2] end
  return e[1]
end

-- Delete up to batch events that expired at now; return how many.
local function purge_events(events, by_expiry, now, batch)
  local stale = redis.call('ZRANGEBYSCORE', by_expiry, '-inf', now, 'LIMIT', 0, batch)
  for _, seq in ipairs(stale) do
    redis.call('ZREMRANGEBYSCORE', events, seq, seq)
    redis.call('ZREM', by_expiry, seq)
  end
  return #stale
end
"""
)

_CREATE = r"""
-- KEYS: session, user index, global index (the session alone on a cluster, where the
--       caller has indexed it first)
-- ARGV: ttl_ms, created_at, sid, global member, expiry, field, value, ...
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 6))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
if KEYS[2] then
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
  redis.call('ZADD', KEYS[3], ARGV[5], ARGV[4])
end
return 1
"""

_ROTATE = r"""
-- KEYS: session, events, seq, events by expiry (the session alone on a cluster)
-- ARGV: generation, presented hash, successor hash, sealed successor, now,
--       idle_expires_at, grace, event_expires_at, ttl slack ms, channel, sid
local key = KEYS[1]
local s = redis.call('HMGET', key, 'generation', 'revoked_at', 'idle_expires_at',
  'absolute_expires_at', 'current_hash', 'previous_hash', 'rotated_at', 'sealed', 'sub')
if not s[1] then return {'unknown'} end
local gen, stored, now = tonumber(ARGV[1]), tonumber(s[1]), tonumber(ARGV[5])
if s[2] then return {'revoked', false, record(key)} end
if now >= tonumber(s[3]) or now >= tonumber(s[4]) then
  return {'expired', false, record(key)}
end
if gen == stored and ARGV[2] == s[5] then
  redis.call('HSET', key, 'generation', string.format('%d', stored + 1),
    'previous_hash', s[5], 'current_hash', ARGV[3], 'sealed', ARGV[4],
    'rotated_at', ARGV[5], 'last_used_at', ARGV[5], 'idle_expires_at', ARGV[6])
  -- The TTL follows the sliding expiry; it only collects garbage (see the module doc).
  local left = math.min(tonumber(ARGV[6]), tonumber(s[4])) - now
  redis.call('PEXPIRE', key, string.format('%d', math.ceil(left * 1000) + tonumber(ARGV[9])))
  return {'rotated', false, record(key)}  -- the caller has its own sealed pair
end
if gen == stored - 1 and ARGV[2] == s[6] and s[7]
    and now < tonumber(s[7]) + tonumber(ARGV[7]) then
  return {'replayed', s[8], record(key)}
end
if gen < stored then
  -- Reuse: revoke the whole session and record the event in this same script. On a
  -- cluster the event keys live in another slot: publish the event unsequenced now,
  -- so live verifiers learn of it in this atomic step, and the caller records it.
  redis.call('HSET', key, 'revoked_at', ARGV[5], 'revoked_reason', 'reuse')
  if KEYS[2] then
    emit(ARGV[10], 'session', ARGV[5], ARGV[8], ARGV[11], s[9], 'reuse')
  else
    local notice = event(0, 'session', ARGV[5], ARGV[8], ARGV[11], s[9], 'reuse')
    redis.call('PUBLISH', ARGV[10], notice)
  end
  return {'reused', false, record(key)}
end
return {'unknown'}
"""

_LIST = r"""
-- KEYS: user index; ARGV: session key prefix
local rows = {}
for _, sid in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local row = record(ARGV[1] .. '{' .. sid .. '}')
  if row[1] then rows[#rows + 1] = row end
end
return rows
"""

_REVOKE_SESSION = r"""
-- KEYS: session, events, seq, events by expiry (the session alone on a cluster, where
--       the caller records the event)
-- ARGV: now, reason, event_expires_at, channel, sid
-- Returns the session's sub when this call revoked it, nil when unknown or revoked.
local s = redis.call('HMGET', KEYS[1], 'sid', 'revoked_at', 'sub')
if not s[1] or s[2] then return false end
redis.call('HSET', KEYS[1], 'revoked_at', ARGV[1], 'revoked_reason', ARGV[2])
if KEYS[2] then emit(ARGV[4], 'session', ARGV[1], ARGV[3], ARGV[5], s[3], ARGV[2]) end
return s[3]
"""

_REVOKE_USER = r"""
-- KEYS: user index, events, seq, events by expiry
-- ARGV: now, reason, event_expires_at, channel, session key prefix, sub
-- One 'session' event per revoked session (the index is ordered by created_at, then
-- sid: oldest first), so verifiers deny exactly those sids, then the 'user' event.
local now, count = tonumber(ARGV[1]), 0
for _, sid in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if revoke_if_active(ARGV[5] .. '{' .. sid .. '}', now, ARGV[1], ARGV[2]) then
    emit(ARGV[4], 'session', ARGV[1], ARGV[3], sid, ARGV[6], ARGV[2])
    count = count + 1
  end
end
emit(ARGV[4], 'user', ARGV[1], ARGV[3], nil, ARGV[6], ARGV[2])
return count
"""

_REVOKE_ALL = r"""
-- KEYS: global index, events, seq, events by expiry
-- ARGV: now, reason, event_expires_at, channel, session key prefix
local now, count = tonumber(ARGV[1]), 0
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local sid = cjson.decode(member)[1]
  if revoke_if_active(ARGV[5] .. '{' .. sid .. '}', now, ARGV[1], ARGV[2]) then
    count = count + 1
  end
end
emit(ARGV[4], 'all', ARGV[1], ARGV[3], nil, nil, ARGV[2])
return count
"""

_PURGE = r"""
-- KEYS: global index, events, events by expiry
-- ARGV: now, batch, session key prefix, user key prefix, most entries to examine
local now, batch, budget = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[5])
local removed = 0
-- The global index scores a session by its expiry when last indexed; rotate does not
-- touch the index (it stays on the session's own key), so a score may lag behind a
-- sliding idle expiry. Candidates are checked against the hash: gone (TTL) or expired
-- at now -> remove; still live -> re-score with the current expiry.
while removed < batch and budget > 0 do
  local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, batch)
  if #due == 0 then break end
  for _, member in ipairs(due) do
    budget = budget - 1
    local entry = cjson.decode(member)
    local expiry = purge_session(ARGV[3] .. '{' .. entry[1] .. '}', now)
    if expiry then
      redis.call('ZADD', KEYS[1], expiry, member)
    else
      redis.call('ZREM', KEYS[1], member)
      redis.call('ZREM', ARGV[4] .. '{' .. entry[2] .. '}', entry[1])
      removed = removed + 1
    end
    if removed == batch or budget == 0 then break end
  end
end
return removed + purge_events(KEYS[2], KEYS[3], ARGV[1], batch)
"""

_RECORD = r"""
-- KEYS: this call's marker, events, seq, events by expiry (one slot: tag {rev})
-- ARGV: channel, marker ttl ms, at, expires_at, reason, then kind, sid, sub for each
--       event ('' where the kind has none)
-- The second step of a revocation on a cluster: record (and publish) its events in
-- order, once. A retry finds the marker and records nothing; returns 1 when recorded.
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[2]) then return 0 end
for i = 6, #ARGV, 3 do
  local sid, sub = ARGV[i + 1], ARGV[i + 2]
  if ARGV[i] ~= 'session' then sid = nil end
  if ARGV[i] == 'all' then sub = nil end
  emit(ARGV[1], ARGV[i], ARGV[3], ARGV[4], sid, sub, ARGV[5])
end
return 1
"""

_REVOKE_ACTIVE = r"""
-- KEYS: one session; ARGV: now, reason, sub
-- The per-session step of revoke_user and revoke_all on a cluster: revoke the session
-- if it is active at now and is sub's (an index entry left behind by a refused
-- duplicate create must not reach another user's session). 1 when revoked.
if redis.call('HGET', KEYS[1], 'sub') ~= ARGV[3] then return 0 end
if revoke_if_active(KEYS[1], tonumber(ARGV[1]), ARGV[1], ARGV[2]) then return 1 end
return 0
"""

_PURGE_SESSION = r"""
-- KEYS: one session; ARGV: now
-- nil when the session is gone or was deleted as expired, else its expiry.
return purge_session(KEYS[1], tonumber(ARGV[1]))
"""

_PURGE_EVENTS = r"""
-- KEYS: events, events by expiry; ARGV: now, batch
return purge_events(KEYS[1], KEYS[2], ARGV[1], tonumber(ARGV[2]))
"""

_CREATE_USER = r"""
-- KEYS: users by name, usernames by sub
-- ARGV: username, sub, user JSON
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1
    or redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
return 1
"""

_UPDATE_USER = r"""
-- KEYS: users by name, usernames by sub
-- ARGV: username, sub, user JSON
-- Returns 0 when no user has this sub, -1 when a rename would take another user's
-- name (nothing is written then), 1 when the record was replaced.
local old = redis.call('HGET', KEYS[2], ARGV[2])
if not old then return 0 end
if old ~= ARGV[1] then
  if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return -1 end
  redis.call('HDEL', KEYS[1], old)
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
"""

_RECORD_FAILURE = r"""
-- KEYS: failure counter (hash: count, ends)
-- ARGV: now, the window end should a new window start (now + window), its ttl ms
-- A window runs from its first failure until ends, in the caller's time: the server
-- clock only drives the TTL, which collects the key after the window.
local s = redis.call('HMGET', KEYS[1], 'count', 'ends')
if s[1] and tonumber(ARGV[1]) < tonumber(s[2]) then
  return redis.call('HINCRBY', KEYS[1], 'count', 1)
end
redis.call('HSET', KEYS[1], 'count', 1, 'ends', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""

SCRIPTS = {
    name: _PRELUDE + body
    for name, body in {
        "create": _CREATE,
        "rotate": _ROTATE,
        "list": _LIST,
        "revoke_session": _REVOKE_SESSION,
        "revoke_user": _REVOKE_USER,
        "revoke_all": _REVOKE_ALL,
        "purge": _PURGE,
        "record": _RECORD,
        "revoke_active": _REVOKE_ACTIVE,
        "purge_session": _PURGE_SESSION,
        "purge_events": _PURGE_EVENTS,
        "create_user": _CREATE_USER,
        "update_user": _UPDATE_USER,
        "record_failure": _RECORD_FAILURE,
    }.items()
}
"""Script sources by name; each starts with the shared helper functions."""
