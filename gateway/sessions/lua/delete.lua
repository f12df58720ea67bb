-- prelude.lua (touch, owned, remember; the KEYS layout) is prepended when loaded.
-- ARGV: owner
if not owned(ARGV[1]) then return {'gone', ''} end
for i = 1, 7 do redis.call('DEL', KEYS[i]) end
return {'ok', ''}
