-- Shared by every session script (prepended when the scripts are loaded).
-- KEYS[1..7] are the session's keys in SessionKeys.all() order, KEYS[8] the idempotency
-- key (a dummy in the same slot when there is none). Every script starts with the owner check.
local function touch(ttl)
  for i = 1, 7 do redis.call('EXPIRE', KEYS[i], ttl) end
end
local function owned(owner)
  return redis.call('HGET', KEYS[1], 'owner') == owner
end
local function remember(value, ttl, vid)
  if value ~= '' then
    if vid then value = (string.gsub(value, '"__VID__"', tostring(vid))) end
    redis.call('SET', KEYS[8], value, 'PX', ttl)
  end
end
