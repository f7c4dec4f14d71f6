"""The Lua scripts behind :mod:`tokenward.stores.redis`, one per state change.

Redis runs each script to completion before any other command, so a script is the unit
of atomicity: it reads, decides and writes with nothing interleaved. The scripts compare
times as doubles parsed from the exact ``repr`` strings the Python side sends, and they
write those same strings back, so no time is ever rounded.

Conventions shared by the scripts that record a revocation event: ``KEYS[2]``,
``KEYS[3]`` and ``KEYS[4]`` are the events sorted set, the sequence counter and the
events-by-expiry sorted set; the event JSON is built by hand so that times stay exact
JSON numbers (``cjson`` would print them with 14 significant digits).

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

local function emit(channel, kind, at, expires_at, sid, sub, reason)
  local seq = redis.call('INCR', KEYS[3])
  local function str(s) if s then return cjson.encode(s) end return 'null' end
  local payload = '{"seq":' .. string.format('%d', seq) .. ',"kind":"' .. kind
    .. '","at":' .. at .. ',"expires_at":' .. expires_at .. ',"sid":' .. str(sid)
    .. ',"sub":' .. str(sub) .. ',"reason":' .. str(reason) .. '}'
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
"""
)

_CREATE = r"""
-- KEYS: session, user index, global index
-- ARGV: ttl_ms, created_at, sid, global member, expiry, field, value, ...
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 6))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[4])
return 1
"""

_ROTATE = r"""
-- KEYS: session, events, seq, events by expiry
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
  -- Reuse: revoke the whole session and record the event in this same script.
  redis.call('HSET', key, 'revoked_at', ARGV[5], 'revoked_reason', 'reuse')
  emit(ARGV[10], 'session', ARGV[5], ARGV[8], ARGV[11], s[9], 'reuse')
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
-- KEYS: session, events, seq, events by expiry
-- ARGV: now, reason, event_expires_at, channel, sid
local s = redis.call('HMGET', KEYS[1], 'sid', 'revoked_at', 'sub')
if not s[1] or s[2] then return 0 end
redis.call('HSET', KEYS[1], 'revoked_at', ARGV[1], 'revoked_reason', ARGV[2])
emit(ARGV[4], 'session', ARGV[1], ARGV[3], ARGV[5], s[3], ARGV[2])
return 1
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
    local key = ARGV[3] .. '{' .. entry[1] .. '}'
    local e = redis.call('HMGET', key, 'idle_expires_at', 'absolute_expires_at')
    if not e[1] or now >= tonumber(e[1]) or now >= tonumber(e[2]) then
      redis.call('DEL', key)
      redis.call('ZREM', KEYS[1], member)
      redis.call('ZREM', ARGV[4] .. '{' .. entry[2] .. '}', entry[1])
      removed = removed + 1
    else
      local expiry = e[1]
      if tonumber(e[2]) < tonumber(e[1]) then expiry = e[2] end
      redis.call('ZADD', KEYS[1], expiry, member)
    end
    if removed == batch or budget == 0 then break end
  end
end
local stale = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[1], 'LIMIT', 0, batch)
for _, seq in ipairs(stale) do
  redis.call('ZREMRANGEBYSCORE', KEYS[2], seq, seq)
  redis.call('ZREM', KEYS[3], seq)
end
return removed + #stale
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
        "create_user": _CREATE_USER,
        "update_user": _UPDATE_USER,
        "record_failure": _RECORD_FAILURE,
    }.items()
}
"""Script sources by name; each starts with the shared helper functions."""
