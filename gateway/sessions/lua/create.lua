-- prelude.lua (touch, owned, remember; the KEYS layout) is prepended when loaded.
-- ARGV: owner, now, ttl, title
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {'exists', redis.call('HGET', KEYS[1], 'owner') or ''}
end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'created_at', ARGV[2], 'updated_at', ARGV[2],
  'head', '', 'next', 0, 'nversions', 0, 'bytes', 0, 'title', ARGV[4])
touch(tonumber(ARGV[3]))
return {'ok', ''}
