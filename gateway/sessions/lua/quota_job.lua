-- Take one of a principal's concurrent long-job slots (a lease: a crashed gateway's slot
-- frees itself when the lease ends). KEYS: [1] the principal's jobs (zset token -> lease end ms)
-- ARGV: now ms, token, lease end ms, max jobs (0 = no limit)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local n = redis.call('ZCARD', KEYS[1])
local max = tonumber(ARGV[4])
if max > 0 and n >= max then return {'jobs', tostring(n)} end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
redis.call('PEXPIREAT', KEYS[1], redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')[2])
return {'ok', tostring(n + 1)}
