-- Every script's arguments are name/value pairs (store/redis.rs builds them, store/keys.rs
-- names the keys), read into A: no argument is known by its position, and no key is spelt here.
local A = {}
for i = 1, #ARGV, 2 do
  A[ARGV[i]] = ARGV[i + 1]
end

-- Whether an instance is alive: its heartbeat runs and someone listens on its channel. A
-- killed instance's heartbeat outlives it by up to its TTL, but its subscription dies with its
-- connection: its tickets must not be matched meanwhile (nobody would tell their users). On a
-- Redis Cluster (A.sharded) the channels are sharded ones, in the keys' slot, so this node
-- counts their listeners.
local function instance_alive(instance)
  local numsub = A.sharded == '1' and 'SHARDNUMSUB' or 'NUMSUB'
  return redis.call('EXISTS', A.instance .. instance) == 1
    and redis.call('PUBSUB', numsub, A.channel .. instance)[2] > 0
end
