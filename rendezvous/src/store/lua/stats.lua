-- Online users across the live instances (each heartbeat holds its instance's count) and
-- waiting tickets; an instance that is not alive is forgotten from the set of instances.
-- After prelude.lua. A holds the keys (store/keys.rs). Reply: {online, waiting}.
local online = 0
for _, instance in ipairs(redis.call('SMEMBERS', A.instances)) do
  if instance_alive(instance) then
    online = online + tonumber(redis.call('GET', A.instance .. instance) or '0')
  else
    redis.call('SREM', A.instances, instance)
  end
end
return {online, redis.call('ZCARD', A.queue)}
