-- One atomic join (see store/redis.rs). KEYS[1] = the queue; every key shares its hash tag.
-- The queue is ordered by a strict arrival sequence (two joins in one millisecond keep their
-- order); each ticket is a hash: `json` (the ticket) and `joined` (ms, for the tie window).
-- ARGV: ticket JSON, now ms, scan, daily limit, day, count TTL s, last-partner TTL s,
--       ticket TTL s, tie window ms, mode ('join', or 'again': a waiting ticket looks at
--       `scan` of the tickets queued after it, from the `skip`th of them (counted round: past
--       the last, it starts over right behind itself), and is never queued again), skip,
--       the join scan (a ticket within it is seen by every join and need not look again).
-- Reply (JSON): banned / daily_limit / matched / queued / gone.
local P = string.sub(KEYS[1], 1, -6)  -- '{ac}:' from '{ac}:queue'
local ticket = cjson.decode(ARGV[1])
local now, scan, limit, day = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local count_ttl, last_ttl, ticket_ttl, tie = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local me = ticket.pseudonym
local again = ARGV[10] == 'again'

local ban = redis.call('PTTL', P .. 'ban:' .. me)
if ban > 0 or ban == -1 then
  return cjson.encode({banned = math.max(1, math.ceil(ban / 1000))})
end
local used = tonumber(redis.call('GET', P .. 'count:' .. me .. ':' .. day) or '0')
if used >= limit then
  return cjson.encode({daily_limit = true})
end

local function accepts(want, gender)
  return want == 'any' or (want == 'm' and gender == 'M') or (want == 'f' and gender == 'F')
end
local function undisclosed_ok(t)
  return t.gender ~= 'U' or t.want == 'any'
end
local mine, wanted = {}, 0
for _, i in ipairs(ticket.interests) do mine[i] = true; wanted = wanted + 1 end
local my_last = redis.call('GET', P .. 'last:' .. me)

local first = 0
if again then
  local rank = redis.call('ZRANK', KEYS[1], ticket.session)
  if not rank then
    return cjson.encode({gone = true})
  end
  -- Within the oldest `join scan` (ARGV[12]), every join sees it already: nothing to do.
  if rank < tonumber(ARGV[12]) then
    return cjson.encode({queued = redis.call('ZCARD', KEYS[1])})
  end
  local behind = redis.call('ZCARD', KEYS[1]) - rank - 1
  first = rank + 1
  if behind > 0 then
    first = first + tonumber(ARGV[11]) % behind
  end
end
local entries = redis.call('ZRANGE', KEYS[1], first, first + scan - 1, 'WITHSCORES')  -- oldest first
local alive = {}
local best, best_bucket, best_shared, best_raw
for k = 1, #entries, 2 do
  local session = entries[k]
  local fields = redis.call('HMGET', P .. 't:' .. session, 'json', 'joined')
  local raw, joined = fields[1], tonumber(fields[2])
  -- Arrival order: once past the best candidate's tie bucket, nobody later can win.
  if best ~= nil and joined ~= nil and math.floor(joined / tie) > best_bucket then
    break
  end
  if not raw or not joined then
    redis.call('ZREM', KEYS[1], session)
  else
    local other = cjson.decode(raw)
    local live = alive[other.instance]
    if live == nil then
      live = redis.call('EXISTS', P .. 'inst:' .. other.instance) == 1
      alive[other.instance] = live
    end
    local ban_left = live and redis.call('PTTL', P .. 'ban:' .. other.pseudonym) or 0
    if not live or other.pseudonym == me or ban_left > 0 or ban_left == -1 then
      -- Never matched, cleaned now: a ghost of a dead instance, an older ticket of this very
      -- device (one ticket per device, however many sockets it opens), or a device banned
      -- after it queued.
      redis.call('ZREM', KEYS[1], session)
      redis.call('DEL', P .. 't:' .. session)
    elseif tonumber(redis.call('GET', P .. 'count:' .. other.pseudonym .. ':' .. day) or '0') < limit
      and undisclosed_ok(ticket) and undisclosed_ok(other)
      and accepts(ticket.want, other.gender) and accepts(other.want, ticket.gender)
      and my_last ~= other.pseudonym
      and redis.call('SISMEMBER', P .. 'blocks:' .. me, other.pseudonym) == 0
      and redis.call('SISMEMBER', P .. 'blocks:' .. other.pseudonym, me) == 0
      and redis.call('GET', P .. 'last:' .. other.pseudonym) ~= me then
      local bucket = math.floor(joined / tie)
      local shared = 0
      for _, i in ipairs(other.interests) do
        if mine[i] then shared = shared + 1 end
      end
      if best == nil or bucket < best_bucket or (bucket == best_bucket and shared > best_shared) then
        best, best_bucket, best_shared, best_raw = session, bucket, shared, raw
        -- Sharing every interest cannot be beaten.
        if shared >= wanted then break end
      end
    end
  end
end

if best then
  local other = cjson.decode(best_raw)
  redis.call('ZREM', KEYS[1], best, ticket.session)
  redis.call('DEL', P .. 't:' .. best, P .. 't:' .. ticket.session)
  for _, pair in ipairs({{me, other.pseudonym}, {other.pseudonym, me}}) do
    local key = P .. 'count:' .. pair[1] .. ':' .. day
    redis.call('INCR', key)
    redis.call('EXPIRE', key, count_ttl)
    redis.call('SET', P .. 'last:' .. pair[1], pair[2], 'EX', last_ttl)
  end
  return cjson.encode({matched = best_raw})
end

if again then
  return cjson.encode({queued = redis.call('ZCARD', KEYS[1])})
end
local seq = redis.call('INCR', P .. 'seq')
redis.call('EXPIRE', P .. 'seq', ticket_ttl)
redis.call('ZADD', KEYS[1], 'NX', seq, ticket.session)
redis.call('EXPIRE', KEYS[1], ticket_ttl)
redis.call('HSET', P .. 't:' .. ticket.session, 'json', ARGV[1], 'joined', now)
redis.call('EXPIRE', P .. 't:' .. ticket.session, ticket_ttl)
return cjson.encode({queued = redis.call('ZCARD', KEYS[1])})
