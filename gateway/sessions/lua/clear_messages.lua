-- prelude.lua (touch, owned, remember; the KEYS layout) is prepended when loaded.
-- ARGV: owner, now, ttl
if not owned(ARGV[1]) then return {'gone', ''} end
redis.call('DEL', KEYS[7])
redis.call('HSET', KEYS[1], 'updated_at', ARGV[2])
touch(tonumber(ARGV[3]))
return {'ok', ''}
