-- Drops up to `max` queue entries whose ticket is gone or whose instance is not alive
-- (rules.lua's triage drops them too, when a join reaches them), and, when `retiring` is set,
-- every ticket of that instance. After prelude.lua. A holds the keys (store/keys.rs).
local entries = redis.call('ZRANGE', A.queue, 0, tonumber(A.max) - 1)
local removed, alive = 0, {}
for _, session in ipairs(entries) do
  local instance = redis.call('HGET', A.ticket .. session, 'i')
  local drop = not instance or instance == A.retiring
  if not drop then
    local live = alive[instance]
    if live == nil then
      live = instance_alive(instance)
      alive[instance] = live
    end
    drop = not live
  end
  if drop then
    redis.call('ZREM', A.queue, session)
    redis.call('DEL', A.ticket .. session)
    removed = removed + 1
  end
end
return removed
