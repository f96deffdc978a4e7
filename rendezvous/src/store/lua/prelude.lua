-- Every script's arguments are name/value pairs (store/redis.rs builds them, store/keys.rs
-- names the keys), read into A: no argument is known by its position, and no key is spelt here.
local A = {}
for i = 1, #ARGV, 2 do
  A[ARGV[i]] = ARGV[i + 1]
end
