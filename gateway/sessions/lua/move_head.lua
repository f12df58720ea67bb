-- prelude.lua (touch, owned, remember; the KEYS layout) is prepended when loaded.
-- ARGV: owner, action (undo|redo|checkout), expected head ('*' = any), target, now, ttl,
--       idem value, idem ttl ms
if not owned(ARGV[1]) then return {'gone', ''} end
local head = redis.call('HGET', KEYS[1], 'head') or ''
if ARGV[3] ~= '*' and head ~= ARGV[3] then return {'conflict', head} end
local new = nil
if ARGV[2] == 'undo' then
  if head == '' then return {'nothing', head} end
  local rec = cjson.decode(redis.call('HGET', KEYS[2], head))
  if rec['parent'] == nil or rec['parent'] == cjson.null then return {'nothing', head} end
  new = tostring(rec['parent'])
  redis.call('RPUSH', KEYS[4], head)
elseif ARGV[2] == 'redo' then
  new = redis.call('RPOP', KEYS[4])
  if not new then return {'nothing', head} end
else
  if redis.call('HEXISTS', KEYS[2], ARGV[4]) == 0 then return {'missing', head} end
  new = ARGV[4]
  if new ~= head then redis.call('DEL', KEYS[4]) end
end
redis.call('HSET', KEYS[1], 'head', new, 'updated_at', ARGV[5])
remember(ARGV[7], ARGV[8], new)
touch(tonumber(ARGV[6]))
return {'ok', new}
