-- Give an Idempotency-Key back, only if it still holds our pending claim.
-- KEYS[1]: the idempotency key; ARGV[1]: the pending value we set. (No prelude.)
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
