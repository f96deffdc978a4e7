-- Forgets a device's live session, only if it is still the one given (see store/redis.rs):
-- a session replaced by a newer one must not erase the newer one's claim when it closes.
-- KEYS[1] = the claim ('instance session'); ARGV[1] = the session.
local value = redis.call('GET', KEYS[1])
if value and string.sub(value, -string.len(ARGV[1]) - 1) == ' ' .. ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
