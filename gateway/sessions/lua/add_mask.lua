-- prelude.lua (touch, owned, remember; the KEYS layout) is prepended when loaded.
-- ARGV: owner, mask id, mask json, mask bytes, max bytes, now, ttl, idem value, idem ttl ms
if not owned(ARGV[1]) then return {'gone', ''} end
local used = tonumber(redis.call('HGET', KEYS[1], 'bytes') or '0')
local add = string.len(ARGV[4])
if used + add > tonumber(ARGV[5]) then return {'bytes_cap', tostring(used)} end
redis.call('HSET', KEYS[5], ARGV[2], ARGV[3])
redis.call('HSET', KEYS[6], ARGV[2], ARGV[4])
redis.call('HSET', KEYS[1], 'bytes', used + add, 'updated_at', ARGV[6])
remember(ARGV[8], ARGV[9], nil)
touch(tonumber(ARGV[7]))
return {'ok', ''}
