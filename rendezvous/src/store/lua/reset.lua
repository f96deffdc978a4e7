-- The admin reset: deletes every key of the store but the instances' own (their heartbeats and
-- their set: they are still running), SCANning the one slot that holds them all (so on a Redis Cluster too, where a
-- client's SCAN would walk one arbitrary node). After prelude.lua. A holds the keys
-- (store/keys.rs) and `prefix`, what all of them start with. Reply: how many were deleted.
local cursor, deleted = '0', 0
repeat
  local reply = redis.call('SCAN', cursor, 'MATCH', A.prefix .. '*', 'COUNT', 1000)
  cursor = reply[1]
  for _, key in ipairs(reply[2]) do
    if key ~= A.instances and key:sub(1, #A.instance) ~= A.instance then
      redis.call('DEL', key)
      deleted = deleted + 1
    end
  end
until cursor == '0'
return deleted
