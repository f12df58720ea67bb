-- Reserve (ARGV[3] > 0) or give back (< 0) bytes of one session against its principal's quota.
-- KEYS: [1] the principal's sessions (zset sid -> expiry ms), [2] its bytes (hash sid -> bytes)
-- ARGV: now ms, sid, bytes, max bytes (0 = no limit), expiry ms of the session, keys' ttl ms
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
for _, s in ipairs(gone) do
  redis.call('ZREM', KEYS[1], s)
  redis.call('HDEL', KEYS[2], s)
end
local total = 0
for _, v in ipairs(redis.call('HVALS', KEYS[2])) do total = total + tonumber(v) end
local add = tonumber(ARGV[3])
local max = tonumber(ARGV[4])
if add > 0 and max > 0 and total + add > max then return {'bytes', tostring(total)} end
if add < 0 then
  local had = tonumber(redis.call('HGET', KEYS[2], ARGV[2]) or '0')
  if had + add < 0 then add = -had end
  if redis.call('ZSCORE', KEYS[1], ARGV[2]) == false then
    redis.call('HDEL', KEYS[2], ARGV[2])
    return {'ok', tostring(total)}
  end
else
  redis.call('ZADD', KEYS[1], ARGV[5], ARGV[2])
end
redis.call('HINCRBY', KEYS[2], ARGV[2], add)
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
return {'ok', tostring(total + add)}
