-- Counts a reporter once against a target and bans at the threshold (rules.lua's
-- report_bans); the ban consumes the reports behind it. After prelude.lua and rules.lua. A
-- holds the keys (store/keys.rs) and: reporter, target, threshold, ttl_reports, ttl_ban (s).
-- Reply: {unique reporters, 1 if this report banned}.
local reports = A.reports .. A.target
redis.call('SADD', reports, A.reporter)
redis.call('EXPIRE', reports, A.ttl_reports)
local n = redis.call('SCARD', reports)
local banned = 0
if report_bans(n, tonumber(A.threshold), redis.call('EXISTS', A.ban .. A.target) == 1) then
  redis.call('SET', A.ban .. A.target, '1', 'EX', A.ttl_ban)
  redis.call('DEL', reports)
  banned = 1
end
return {n, banned}
