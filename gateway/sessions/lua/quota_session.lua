-- Count a new session against its principal's quota (stands alone: the principal's keys).
-- KEYS: [1] the principal's sessions (zset sid -> expiry ms), [2] its bytes (hash sid -> bytes)
-- ARGV: now ms, sid, expiry ms of the session, max sessions (0 = no limit), keys' ttl ms
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
for _, s in ipairs(gone) do
  redis.call('ZREM', KEYS[1], s)
  redis.call('HDEL', KEYS[2], s)
end
local n = redis.call('ZCARD', KEYS[1])
local answer = 'known'  -- a retried create: counted already
if not redis.call('ZSCORE', KEYS[1], ARGV[2]) then
  local max = tonumber(ARGV[4])
  if max > 0 and n >= max then return {'sessions', tostring(n)} end
  answer = 'new'
  redis.call('HSETNX', KEYS[2], ARGV[2], 0)
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return {'ok', answer}
