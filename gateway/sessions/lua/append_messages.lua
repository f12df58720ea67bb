-- prelude.lua (touch, owned, remember; the KEYS layout) is prepended when loaded.
-- ARGV: owner, now, ttl, max messages, idem value, idem ttl ms, message json...
if not owned(ARGV[1]) then return {'gone', ''} end
for i = 7, #ARGV do redis.call('RPUSH', KEYS[7], ARGV[i]) end
redis.call('LTRIM', KEYS[7], -tonumber(ARGV[4]), -1)
redis.call('HSET', KEYS[1], 'updated_at', ARGV[2])
remember(ARGV[5], ARGV[6], nil)
touch(tonumber(ARGV[3]))
return {'ok', ''}
