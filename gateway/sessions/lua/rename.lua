-- prelude.lua (touch, owned, remember; the KEYS layout) is prepended when loaded.
-- ARGV: owner, now, ttl, title ('' clears it)
if not owned(ARGV[1]) then return {'not_found', ''} end
redis.call('HSET', KEYS[1], 'title', ARGV[4], 'updated_at', ARGV[2])
touch(tonumber(ARGV[3]))
return {'ok', ''}
