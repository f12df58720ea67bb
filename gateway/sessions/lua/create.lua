-- prelude.lua (touch, owned, remember; the KEYS layout) is prepended when loaded.
-- ARGV: owner, now, ttl, title, fingerprint of the creating request ('' without a key)
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {'exists', redis.call('HGET', KEYS[1], 'owner') or '',
    redis.call('HGET', KEYS[1], 'create_fp') or ''}
end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'created_at', ARGV[2], 'updated_at', ARGV[2],
  'head', '', 'next', 0, 'nversions', 0, 'bytes', 0, 'title', ARGV[4], 'create_fp', ARGV[5] or '')
touch(tonumber(ARGV[3]))
return {'ok', ''}
