"""The scope scripts: a read and a compare-and-set commit, each of many scopes in one
call. A 10,000-tenant payload is a few dozen calls instead of 10,000 (or 30,000
commands for the read): per call, Redis sets up a script and the client packs and
parses a command, and that was most of the cost. Each scope is still decided on
its own: a scope whose version moved is left as it was and reported, the others
commit. On a cluster a call holds scopes of one slot (`ScopeStore` groups them)."""

from __future__ import annotations

from receiver.store.codec import BREAKER_FIELDS

BATCH_SCOPES = 200
"""Scopes per call: a few milliseconds of Redis's time, so other clients' commands
wait no longer than that."""
PART_SCOPES = 2000
"""Scopes per pipeline when a commit is sent in parts (`overlap`)."""
CHUNK = 500
"""Values per `unpack`, well inside Lua's stack limit."""

TAKE_SLOT = """
local guard = {}
local function take_slot(isolated, known, percent, tenant)
  if not guard.known then
    guard.known = redis.call('ZCARD', known)
    guard.held = redis.call('SCARD', isolated)
    guard.cap = math.max(1, math.floor(guard.known * tonumber(percent) / 100))
  end
  if guard.held >= guard.cap then return redis.call('SISMEMBER', isolated, tenant) end
  guard.held = guard.held + redis.call('SADD', isolated, tenant)
  return 1
end
"""
"""Lua taking one of the guard's isolation slots for a tenant, for the scripts that
decide on one: `take_slot(isolated set, known tenants zset, max isolated percent,
tenant)` is 1 if the tenant holds a slot after it (one it already held, or one taken
while fewer than the cap are held), else 0; `guard` then has the known tenants, the
held slots and the cap. A call reads the counts once and keeps them up to date."""

_HMGET_STATE = ", ".join(repr(name) for name in ("version", *BREAKER_FIELDS))

# KEYS: per scope its state hash, tenant hash and seen zset (one hash tag each).
# ARGV[1] now (epoch s), then per scope a count and that many delivery keys.
# Returns per scope: the state hash's version and breaker fields (BREAKER_FIELDS'
# order, "" for a missing one), its tier and tier label ("" if none), and the given
# delivery keys it has seen (expiring after now); or 0 for a scope with none of
# these (a storm's new tenants: ten thousand small answers instead of big ones).
# A scope never committed has seen nothing: only a commit adds to `seen`, and it
# writes the version too. Read only.
READ_SCOPES = f"""
local now = tonumber(ARGV[1])
local out = {{}}
local i = 2
for s = 1, #KEYS, 3 do
  local n = tonumber(ARGV[i]); i = i + 1
  local seen = {{}}
  local last = i + n - 1
  local state = redis.call('HMGET', KEYS[s], {_HMGET_STATE})
  if not state[1] then i = last + 1 end
  while i <= last do
    local upto = math.min(last, i + {CHUNK} - 1)
    local scores = redis.call('ZMSCORE', KEYS[s + 2], unpack(ARGV, i, upto))
    for j = 1, upto - i + 1 do
      local score = scores[j]
      if score and (tonumber(score) or math.huge) > now then seen[#seen + 1] = ARGV[i + j - 1] end
    end
    i = upto + 1
  end
  local tenant = redis.call('HMGET', KEYS[s + 1], 'tier', 'tier_label')
  if not state[1] and not state[2] and not tenant[1] and not tenant[2] and #seen == 0 then
    out[#out + 1] = 0
  else
    for j = 1, #state do state[j] = state[j] or '' end
    out[#out + 1] = {{state, tenant[1] or '', tenant[2] or '', seen}}
  end
end
return out
"""

# KEYS: per scope six keys, one hash tag (one cluster slot): its state hash,
# transitions list, seen zset, alerts hash, tenant hash and resolved zset; then, if
# ARGV[6] is not "", the guard's isolated set and known tenants zset (one Redis, not
# a cluster: they are in another slot).
# ARGV[1] now (epoch s), ARGV[2] seen expiry, ARGV[3] transition log cap, ARGV[4] the
# time before which resolved alerts are forgotten (up to 100 per scope per call),
# ARGV[5] when the firing state of an alert that resolved stops being a duplicate
# (a late copy of it is still one for a while; a real re-fire with the same start
# after that counts; a key's expiry is only ever brought forward), ARGV[6] the
# guard's max isolated percent or "", ARGV[7] the number of breaker fields and their
# names. Then per scope: the version it was read at, its tier label ("" leaves it),
# the tenant if the change trips it, else "" (a trip commits only if the tenant then
# holds a guard slot, taken here), and seven counted lists, each a count then its
# items: the breaker's field values (none, or one per name), transitions (JSON),
# delivery keys, alert fingerprint/JSON pairs (counted in pairs), the fingerprints
# of those alerts that are resolved, of those that fire, and the delivery keys to
# expire.
# Returns per scope its new version; 0 if its version moved since the caller read
# it; or, for a trip the guard refused, the slots held, the known tenants and the
# cap. A scope not given a new version is left as it was.
COMMIT_SCOPES = (
    TAKE_SLOT
    + f"""
local now, seen_until, cap = ARGV[1], ARGV[2], tonumber(ARGV[3])
local forget_before, expire_at, percent = ARGV[4], ARGV[5], ARGV[6]
local names = tonumber(ARGV[7])
local i = 8 + names
local scoped = #KEYS
if percent ~= '' then scoped = scoped - 2 end
local function counted(width)
  local n = tonumber(ARGV[i])
  local from = i + 1
  i = from + width * n
  return from, n
end
local function bulk(command, key, from, n, width)
  local last, reply = from + width * n - 1, 0
  while from <= last do
    local upto = math.min(last, from + width * {CHUNK} - 1)
    reply = redis.call(command, key, unpack(ARGV, from, upto))
    from = upto + 1
  end
  return reply
end
local out = {{}}
for s = 0, scoped - 1, 6 do
  local expected, label, trips = tonumber(ARGV[i]), ARGV[i + 1], ARGV[i + 2]
  i = i + 3
  local vf, vn = counted(1)
  local tf, tn = counted(1)
  local df, dn = counted(1)
  local af, an = counted(2)
  local rf, rn = counted(1)
  local ff, fn = counted(1)
  local ef, en = counted(1)
  local version = tonumber(redis.call('HGET', KEYS[s + 1], 'version') or '0')
  if version ~= expected then
    out[#out + 1] = 0
  elseif trips ~= '' and take_slot(KEYS[scoped + 1], KEYS[scoped + 2], percent, trips) == 0 then
    out[#out + 1] = {{guard.held, guard.known, guard.cap}}
  else
    local fields = {{'version', version + 1}}
    for j = 0, vn - 1 do
      fields[#fields + 1] = ARGV[8 + j]
      fields[#fields + 1] = ARGV[vf + j]
    end
    redis.call('HSET', KEYS[s + 1], unpack(fields))
    if tn > 0 and bulk('LPUSH', KEYS[s + 2], tf, tn, 1) > cap then
      redis.call('LTRIM', KEYS[s + 2], 0, cap - 1)
    end
    -- A scope at version 0 has no expired keys or resolved alerts to forget yet.
    if dn > 0 and version > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[s + 3], '-inf', now) end
    for j = df, df + dn - 1 do redis.call('ZADD', KEYS[s + 3], seen_until, ARGV[j]) end
    bulk('HSET', KEYS[s + 4], af, an, 2)
    for j = rf, rf + rn - 1 do redis.call('ZADD', KEYS[s + 6], now, ARGV[j]) end
    if version > 0 then
      bulk('ZREM', KEYS[s + 6], ff, fn, 1)
      local gone = redis.call('ZRANGEBYSCORE', KEYS[s + 6], '-inf', forget_before, 'LIMIT', 0, 100)
      if #gone > 0 then
        redis.call('HDEL', KEYS[s + 4], unpack(gone))
        redis.call('ZREM', KEYS[s + 6], unpack(gone))
      end
    end
    for j = ef, ef + en - 1 do redis.call('ZADD', KEYS[s + 3], 'XX', 'LT', expire_at, ARGV[j]) end
    -- Only a first commit finds its tenant unseen (no commit wrote it yet).
    if version == 0 and label ~= '' then
      redis.call('HSET', KEYS[s + 5], 'first_seen_at', now, 'tier_label', label)
    elseif version == 0 then
      redis.call('HSET', KEYS[s + 5], 'first_seen_at', now)
    elseif label ~= '' then
      redis.call('HSET', KEYS[s + 5], 'tier_label', label)
    end
    out[#out + 1] = version + 1
  end
end
return out
"""
)
