-- One atomic join, or a waiting ticket's look again (see store/redis.rs). After prelude.lua
-- and rules.lua. A holds the keys (store/keys.rs) and:
--   the joiner: session, pseudonym, instance_id, gender, want, interests (a JSON list),
--     ticket_json (its ticket, handed whole to whoever matches it);
--   now (ms), scan, limit (matches a day), tie_ms, ttl_ticket, ttl_count, ttl_last (s);
--   class, tag, fits: the joiner's queue class and pseudonym tag, and the classes it fits
--     (a bit each), for the queue's scores (store/redis.rs `score`);
--   mode: 'join'; 'rejoin': a join for a session that should be waiting, unless its ticket is
--     still queued or a partner took it within ttl_taken; or 'again': a waiting ticket looks
--     at `scan` of the tickets queued after
--     it, from the `skip`th of them (counted round: past the last, it starts over right
--     behind itself), and is never queued again; join_scan: a ticket within the oldest
--     join_scan is seen by every join and need not look again.
-- A ticket is a hash: p (pseudonym), i (instance), g, w, s (interests, JSON), joined (ms),
-- json; the queue orders sessions by a strict arrival sequence (two joins in one millisecond
-- keep their order). Below the sequence, a queue score carries the ticket's class (gender and
-- want) and a 10-bit tag of its pseudonym: score = seq * 8192 + tag * 8 + class. A scan passes
-- over a ticket that the joiner's preferences rule out by its class without reading anything of
-- it (such tickets are most of a scan when one side outnumbers the other), unless its tag says it
-- may be the joiner's own (which the rules drop rather than pass over).
-- Reply: {'banned', seconds} | {'daily_limit'} | {'matched', partner's ticket JSON} |
--        {'queued', waiting} | {'still_waiting'} | {'gone'} | {'taken'}.

local again = A.mode == 'again'
if A.mode == 'rejoin' then
  if redis.call('EXISTS', A.taken .. A.session) == 1 then
    return {'taken'}
  elseif redis.call('ZSCORE', A.queue, A.session) and redis.call('EXISTS', A.ticket .. A.session) == 1 then
    return {'still_waiting'}
  end
end
local limit = tonumber(A.limit)

local function used_today(p)
  return tonumber(redis.call('GET', A.count .. p .. A.count_suffix) or '0')
end

local my_used = used_today(A.pseudonym)
local state, value = admission(ban_left_ms(redis.call('PTTL', A.ban .. A.pseudonym)), my_used, limit)
if state == 'banned' then
  return {'banned', tostring(value)}
elseif value == 0 then
  return {'daily_limit'}
end

-- A seat's and a waiting ticket's lookups, shared by all of them (no closures per ticket):
-- each looks its fact up once, when first asked, and keeps it in the table.
local Seat = {}
Seat.__index = Seat
function Seat:interests()
  if self.interest_list == nil then
    self.interest_list = cjson.decode(self.interests_json)
  end
  return self.interest_list
end
function Seat:last_partner()
  if self.last == nil then
    self.last = redis.call('GET', A.last .. self.pseudonym)
  end
  return self.last
end
function Seat:blocks(q)
  return redis.call('SISMEMBER', A.blocks .. self.pseudonym, q) == 1
end

local function seat(p, gender, want, interests_json)
  return setmetatable({pseudonym = p, gender = gender, want = want, interests_json = interests_json}, Seat)
end

local alive = {}  -- instance -> whether its heartbeat runs, looked up once per join
local Waiting = {}
Waiting.__index = Waiting
function Waiting:joined_ms()
  if self.joined == nil then
    -- A ticket passed over unread: only a scan that already has a partner asks.
    self.joined = tonumber(redis.call('HGET', A.ticket .. self.session, 'joined')) or 0
  end
  return self.joined
end
function Waiting:alive()
  local live = alive[self.instance]
  if live == nil then
    live = instance_alive(self.instance)
    alive[self.instance] = live
  end
  return live
end
function Waiting:banned()
  return redis.call('EXISTS', A.ban .. self.seat.pseudonym) == 1
end
function Waiting:exhausted()
  self.used = used_today(self.seat.pseudonym)
  return self.used >= limit
end

local me = seat(A.pseudonym, A.gender, A.want, A.interests)

-- A queue score's class, as store/redis.rs numbers them (gender * 3 + want; 7: none).
local GENDERS, WANTS = {'M', 'F', 'U'}, {'any', 'm', 'f'}
local my_tag, fits = tonumber(A.tag), tonumber(A.fits)

local first = 0
if again then
  local rank = redis.call('ZRANK', A.queue, A.session)
  if not rank then
    return {'gone'}
  elseif rank < tonumber(A.join_scan) then
    return {'still_waiting'}
  end
  local behind = redis.call('ZCARD', A.queue) - rank - 1
  first = rank + 1
  if behind > 0 then
    first = first + tonumber(A.skip) % behind
  end
end

-- The queue is read a page at a time (members and scores), each four times the last: a join
-- usually stops at the first ticket or two, and the scan is bounded.
local scan = tonumber(A.scan)
local page, page_first, page_ended = {}, first, false  -- member, score, member, score, ...
local looked = {}  -- i -> the waiting ticket (its session, or false for a ghost)
local unread = {}  -- class -> the ticket passed over unread (see below)
local function waiting(i)
  local index = first + i - 1
  local k = index - page_first + 1
  if k > #page / 2 then
    if page_ended then
      return nil
    end
    local size = math.min(math.max(4, #page * 2), first + scan - index)
    page, page_first, k = redis.call('ZRANGE', A.queue, index, index + size - 1, 'WITHSCORES'), index, 1
    page_ended = #page / 2 < size
  end
  local session = page[2 * k - 1]
  if session == nil then
    return nil
  end
  local low = tonumber(page[2 * k]) % 8192
  local class = low % 8
  local w
  if class < 7 and (low - class) / 8 ~= my_tag and bit.band(fits, 2 ^ class) == 0 then
    -- Ruled out by its class, and not the joiner's own: triage passes over it unread. One
    -- such ticket per class serves them all (choose() is done with one before it asks for
    -- the next), so a long scan of misfits allocates nothing.
    w = unread[class]
    if w == nil then
      local gender, want = GENDERS[math.floor(class / 3) + 1], WANTS[class % 3 + 1]
      w = setmetatable({seat = seat(false, gender, want, '[]'), instance = false}, Waiting)
      unread[class] = w
    end
    w.session, w.joined = session, nil
    return w
  else
    local f = redis.call('HMGET', A.ticket .. session, 'p', 'i', 'g', 'w', 's', 'joined', 'json')
    if not f[1] or not f[6] then
      -- Its ticket is gone: a ghost. Nobody's pseudonym is empty, so it is the joiner's own
      -- only if the joiner is nobody; it is dropped as a dead instance's when reached.
      w = setmetatable({seat = seat('', 'U', 'any', '[]'), joined = 0, instance = ''}, Waiting)
    else
      w = setmetatable({seat = seat(f[1], f[3], f[4], f[5]), joined = tonumber(f[6]), instance = f[2], json = f[7]}, Waiting)
    end
  end
  w.session = session
  looked[i] = w
  return w
end

local partner, dropped = choose(me, waiting, scan, tonumber(A.tie_ms))

for _, i in ipairs(dropped) do
  redis.call('ZREM', A.queue, looked[i].session)
  redis.call('DEL', A.ticket .. looked[i].session)
end

if partner then
  local w = looked[partner]
  local other = w.seat.pseudonym
  redis.call('ZREM', A.queue, w.session, A.session)
  redis.call('DEL', A.ticket .. w.session, A.ticket .. A.session)
  redis.call('SET', A.taken .. w.session, '1', 'EX', A.ttl_taken)
  -- Both counts were read on the way (the joiner's admission, the partner's triage).
  for _, c in ipairs({{A.pseudonym, other, my_used}, {other, A.pseudonym, w.used}}) do
    redis.call('SET', A.count .. c[1] .. A.count_suffix, c[3] + 1, 'EX', A.ttl_count)
    redis.call('SET', A.last .. c[1], c[2], 'EX', A.ttl_last)
  end
  return {'matched', w.json}
end

if again then
  return {'still_waiting'}
end
local seq = redis.call('INCR', A.seq)
redis.call('EXPIRE', A.seq, A.ttl_ticket)
redis.call('ZADD', A.queue, 'NX', string.format('%.0f', seq * 8192 + my_tag * 8 + tonumber(A.class)), A.session)
redis.call('EXPIRE', A.queue, A.ttl_ticket)
local ticket = A.ticket .. A.session
redis.call('HSET', ticket, 'p', A.pseudonym, 'i', A.instance_id, 'g', A.gender, 'w', A.want,
  's', A.interests, 'joined', A.now, 'json', A.ticket_json)
redis.call('EXPIRE', ticket, A.ttl_ticket)
return {'queued', tostring(redis.call('ZCARD', A.queue))}
