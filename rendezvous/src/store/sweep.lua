-- Drops up to ARGV[1] queue entries whose ticket is gone or whose instance's heartbeat is gone,
-- and, when ARGV[2] is set, every ticket of that (retiring) instance. KEYS[1] = the queue.
local P = string.sub(KEYS[1], 1, -6)
local entries = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
local removed = 0
for _, session in ipairs(entries) do
  local raw = redis.call('HGET', P .. 't:' .. session, 'json')
  local drop = not raw
  if raw then
    local instance = cjson.decode(raw).instance
    drop = instance == ARGV[2] or redis.call('EXISTS', P .. 'inst:' .. instance) == 0
  end
  if drop then
    redis.call('ZREM', KEYS[1], session)
    redis.call('DEL', P .. 't:' .. session)
    removed = removed + 1
  end
end
return removed
