-- Counts a reporter once against a target and bans at the threshold; the ban consumes the
-- reports behind it. KEYS[1] = the queue (for the hash tag). ARGV: reporter, target,
-- threshold, report TTL s, ban s.
local P = string.sub(KEYS[1], 1, -6)
local reports = P .. 'reports:' .. ARGV[2]
redis.call('SADD', reports, ARGV[1])
redis.call('EXPIRE', reports, tonumber(ARGV[4]))
local n = redis.call('SCARD', reports)
local banned = 0
if n >= tonumber(ARGV[3]) and redis.call('EXISTS', P .. 'ban:' .. ARGV[2]) == 0 then
  redis.call('SET', P .. 'ban:' .. ARGV[2], '1', 'EX', tonumber(ARGV[5]))
  redis.call('DEL', reports)
  banned = 1
end
return {n, banned}
