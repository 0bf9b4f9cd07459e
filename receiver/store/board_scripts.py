"""The incident board's scripts: one change's read, its commit, and taking the turn
at the board or leaving a delivery's signals to the process that holds it."""

from __future__ import annotations

# KEYS[1] state hash, KEYS[2] created zset, KEYS[3] resolved zset, KEYS[4] seen zset,
# KEYS[5] outbox list, KEYS[6] the turn lock, KEYS[7] the deferred updates' due zset,
# KEYS[8] the hand-off list, then per incident its header, timeline list, notes list,
# deferred update set and one hash per collection (`incident_doc.COLLECTIONS`, in that
# order).
# ARGV[1] expected version, ARGV[2] now, ARGV[3] seen expiry, ARGV[4] timeline cap,
# ARGV[5] number of delivery keys, ARGV[6] number of collections, ARGV[7] the turn's
# owner ("" if none; the turn is given back with the commit), ARGV[8] how many
# hand-offs the change applied (taken off the head of the list), ARGV[9] the turn's
# time to live in ms if the owner keeps it while hand-offs wait ("" to give it back
# whatever waits), then the delivery keys, then the number of state field/value
# pairs, then the pairs, then the number of outbox entries and the entries, then per
# incident (same order as its keys): header JSON ("" deletes the incident), created
# at, resolved at ("" while open), the number of new timeline events and the events
# (JSON), the number of new notes and the notes (JSON), the number of notices to
# defer, those notices and when they are due ("" if none), then per collection the
# number of entries written and their field/value pairs, and the number of fields
# deleted and the fields.
# A timeline longer than twice the cap is cut to its first event and the newest ones.
# Returns 0 if the version moved since the caller read it, else the new version and
# the hand-offs waiting for the owner, who kept the turn to apply them (0: given back).
COMMIT_INCIDENTS = """
local version = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if version ~= tonumber(ARGV[1]) then return 0 end
local cap = tonumber(ARGV[4])
local parts = tonumber(ARGV[6])
local i = 10
local n = tonumber(ARGV[5])
if n > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', ARGV[2]) end
for c = 0, n - 1, 500 do
  local scored = {}
  for j = i + c, i + math.min(c + 500, n) - 1 do
    scored[#scored + 1] = ARGV[3]
    scored[#scored + 1] = ARGV[j]
  end
  redis.call('ZADD', KEYS[4], unpack(scored))
end
i = i + n
n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]); i = i + 2 end
n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do redis.call('RPUSH', KEYS[5], ARGV[i]); i = i + 1 end
local width = 4 + parts
for d = 9, #KEYS, width do
  local id = string.match(KEYS[d], 'incident:(.*)$')
  if ARGV[i] == '' then
    for p = d, d + width - 1 do redis.call('DEL', KEYS[p]) end
    redis.call('ZREM', KEYS[2], id)
    redis.call('ZREM', KEYS[3], id)
  else
    redis.call('SET', KEYS[d], ARGV[i])
    redis.call('ZADD', KEYS[2], ARGV[i + 1], id)
    if ARGV[i + 2] ~= '' then redis.call('ZADD', KEYS[3], ARGV[i + 2], id) end
  end
  n = tonumber(ARGV[i + 3]); i = i + 4
  for c = 0, n - 1, 1000 do
    redis.call('RPUSH', KEYS[d + 1], unpack(ARGV, i + c, i + math.min(c + 1000, n) - 1))
  end
  i = i + n
  if n > 0 and redis.call('LLEN', KEYS[d + 1]) > 2 * cap then
    local first = redis.call('LINDEX', KEYS[d + 1], 0)
    redis.call('LTRIM', KEYS[d + 1], -(cap - 1), -1)
    redis.call('LPUSH', KEYS[d + 1], first)
  end
  n = tonumber(ARGV[i]); i = i + 1
  for _ = 1, n do redis.call('RPUSH', KEYS[d + 2], ARGV[i]); i = i + 1 end
  n = tonumber(ARGV[i]); i = i + 1
  for _ = 1, n do redis.call('SADD', KEYS[d + 3], ARGV[i]); i = i + 1 end
  if n > 0 then redis.call('ZADD', KEYS[7], 'NX', ARGV[i], id) end
  i = i + 1
  for p = d + 4, d + width - 1 do
    n = 2 * tonumber(ARGV[i]); i = i + 1
    for c = 0, n - 1, 1000 do
      redis.call('HSET', KEYS[p], unpack(ARGV, i + c, i + math.min(c + 1000, n) - 1))
    end
    i = i + n
    n = tonumber(ARGV[i]); i = i + 1
    for c = 0, n - 1, 1000 do
      redis.call('HDEL', KEYS[p], unpack(ARGV, i + c, i + math.min(c + 1000, n) - 1))
    end
    i = i + n
  end
end
redis.call('HSET', KEYS[1], 'version', version + 1)
if ARGV[8] ~= '0' then redis.call('LTRIM', KEYS[8], tonumber(ARGV[8]), -1) end
local waiting = 0
if ARGV[7] ~= '' and redis.call('GET', KEYS[6]) == ARGV[7] then
  if ARGV[9] ~= '' then waiting = redis.call('LLEN', KEYS[8]) end
  if waiting > 0 then
    redis.call('PEXPIRE', KEYS[6], ARGV[9])
  else
    redis.call('DEL', KEYS[6])
  end
end
return {version + 1, waiting}
"""

# KEYS: per incident its header, then its collections' hashes (in that order).
# ARGV[1] number of collections, then per collection the number of fields to read and
# the fields. Returns per incident its header (nil if none), then per collection the
# values of those fields (nil where absent): a change's whole read in one call.
READ_INCIDENTS = """
local parts = tonumber(ARGV[1])
local fields = {}
local i = 2
for p = 1, parts do
  local n = tonumber(ARGV[i]); i = i + 1
  local f = {}
  for j = 1, n do f[j] = ARGV[i + j - 1] end
  fields[p] = f
  i = i + n
end
local out = {}
for d = 1, #KEYS, parts + 1 do
  local header = redis.call('GET', KEYS[d])
  out[#out + 1] = header
  for p = 1, parts do
    local values = {}
    if header and #fields[p] > 0 then
      local f = fields[p]
      for c = 1, #f, 1000 do
        local chunk = redis.call('HMGET', KEYS[d + p], unpack(f, c, math.min(c + 999, #f)))
        for _, v in ipairs(chunk) do values[#values + 1] = v end
      end
    end
    out[#out + 1] = values
  end
end
return out
"""

# KEYS[1] the turn lock, KEYS[2] the hand-off list. ARGV[1] the taker's token, ARGV[2]
# the turn's time to live in ms, ARGV[3] the taker's signals ("" to take the turn
# only), ARGV[4] the most hand-offs the list holds, ARGV[5] how recently (ms) the
# holder must have taken or renewed the turn for signals to be left to it, ARGV[6]
# how many hand-offs a taker reads.
# Returns {1, the oldest hand-offs} if the turn is now the taker's; {-1} if another
# holds it and the signals were left for the holder; {0} if another holds it and they
# were not (none given, the list full, or a holder that has kept the turn too long to
# be trusted with them).
TAKE_OR_HAND_OFF = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local n = tonumber(ARGV[6])
  if n == 0 then return {1} end
  local out = redis.call('LRANGE', KEYS[2], 0, n - 1)
  table.insert(out, 1, 1)
  return out
end
if ARGV[3] == '' or redis.call('LLEN', KEYS[2]) >= tonumber(ARGV[4]) then return {0} end
local left = redis.call('PTTL', KEYS[1])
local ttl = tonumber(ARGV[2])
if left > ttl or left < ttl - tonumber(ARGV[5]) then return {0} end
redis.call('RPUSH', KEYS[2], ARGV[3])
return {-1}
"""
