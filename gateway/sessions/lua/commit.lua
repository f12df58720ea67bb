-- prelude.lua (touch, owned, remember; the KEYS layout) is prepended when loaded.
-- ARGV: owner, expected head ('*' = any), record json, image sha, image bytes, max versions,
--       max bytes, ttl, now, idem value, idem ttl ms, mask id, mask json, mask bytes
if not owned(ARGV[1]) then return {'gone', ''} end
local head = redis.call('HGET', KEYS[1], 'head') or ''
if ARGV[2] ~= '*' and head ~= ARGV[2] then return {'conflict', head} end
local n = tonumber(redis.call('HGET', KEYS[1], 'nversions') or '0')
if n >= tonumber(ARGV[6]) then return {'versions_cap', tostring(n)} end
local used = tonumber(redis.call('HGET', KEYS[1], 'bytes') or '0')
local add = 0
if redis.call('HEXISTS', KEYS[3], ARGV[4]) == 0 then add = add + string.len(ARGV[5]) end
if ARGV[12] ~= '' then add = add + string.len(ARGV[14]) end
if used + add > tonumber(ARGV[7]) then return {'bytes_cap', tostring(used)} end
local vid = redis.call('HINCRBY', KEYS[1], 'next', 1)
redis.call('HSETNX', KEYS[3], ARGV[4], ARGV[5])
redis.call('HSET', KEYS[2], vid, ARGV[3])
if ARGV[12] ~= '' then
  redis.call('HSET', KEYS[5], ARGV[12], (string.gsub(ARGV[13], '"__VID__"', tostring(vid))))
  redis.call('HSET', KEYS[6], ARGV[12], ARGV[14])
end
redis.call('HSET', KEYS[1], 'head', vid, 'updated_at', ARGV[9], 'nversions', n + 1,
  'bytes', used + add)
redis.call('DEL', KEYS[4])
remember(ARGV[10], ARGV[11], vid)
touch(tonumber(ARGV[8]))
return {'ok', tostring(vid)}
