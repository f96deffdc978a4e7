-- The matching and moderation rules of crate::matcher, function by function, under the same
-- names and with the checks in the same order (store/lua_mirror.rs runs random queues through
-- both and demands the same choice). Lua differs in two ways only: indices count from 1, and
-- facts are methods that look them up when first asked, so a join reads only what the rules
-- reach.
--
-- A seat: pseudonym, gender ('M', 'F', 'U'), want ('any', 'm', 'f'), and the lookups
-- seat:interests() (normalised, no repeats), seat:last_partner() (false for none) and
-- seat:blocks(pseudonym). A waiting ticket: seat, and w:joined_ms(), w:alive(), w:banned(),
-- w:exhausted().

local function accepts(want, gender)
  return want == 'any' or (want == 'm' and gender == 'M') or (want == 'f' and gender == 'F')
end

local function preferences_agree(a, b)
  local function undisclosed_ok(s)
    return s.gender ~= 'U' or s.want == 'any'
  end
  return undisclosed_ok(a) and undisclosed_ok(b) and accepts(a.want, b.gender) and accepts(b.want, a.gender)
end

local function compatible(a, b)
  return a.pseudonym ~= b.pseudonym
    and preferences_agree(a, b)
    and not a:blocks(b.pseudonym)
    and not b:blocks(a.pseudonym)
    and a:last_partner() ~= b.pseudonym
    and b:last_partner() ~= a.pseudonym
end

local function shared(mine, theirs)
  local n = 0
  for _, t in ipairs(theirs) do
    for _, m in ipairs(mine) do
      if m == t then
        n = n + 1
        break
      end
    end
  end
  return n
end

local DROP, SKIP, CONSIDER = 'drop', 'skip', 'consider'

local function triage(me, w)
  if w.seat.pseudonym == me.pseudonym then
    return DROP
  elseif not preferences_agree(me, w.seat) then
    return SKIP
  elseif not w:alive() or w:banned() then
    return DROP
  elseif w:exhausted() then
    return SKIP
  end
  return CONSIDER
end

-- waiting(i): the i-th waiting ticket from the oldest looked at, or nil past the last.
-- Returns the partner's index (or nil) and the list of indices to drop.
local function choose(me, waiting, scan, tie_window_ms)
  local partner, best_bucket, best_shared
  local dropped = {}
  for i = 1, scan do
    local w = waiting(i)
    if w == nil then
      break
    end
    -- Oldest first: once past the best candidate's tie bucket, nobody later can win. (The
    -- bucket is asked for only when it decides something: a ticket passed over unread has not
    -- read when it joined.)
    if partner ~= nil and math.floor(w:joined_ms() / tie_window_ms) > best_bucket then
      break
    end
    local t = triage(me, w)
    if t == DROP then
      dropped[#dropped + 1] = i
    elseif t == CONSIDER and compatible(me, w.seat) then
      local bucket = math.floor(w:joined_ms() / tie_window_ms)
      -- Read only once someone fits (a join that finds nobody decodes nothing); with no
      -- interests of one's own, nobody shares any, and theirs need not be read.
      local wanted = #me:interests()
      local s = 0
      if wanted > 0 then
        s = shared(me:interests(), w.seat:interests())
      end
      if partner == nil or bucket < best_bucket or (bucket == best_bucket and s > best_shared) then
        partner, best_bucket, best_shared = i, bucket, s
        -- Sharing every interest cannot be beaten.
        if s >= wanted then
          break
        end
      end
    end
  end
  return partner, dropped
end

-- Returns 'banned', seconds to wait; or 'welcome', matches left today.
local function admission(ban_left_ms, used_today, daily_limit)
  if ban_left_ms ~= nil then
    return 'banned', math.max(1, math.ceil(ban_left_ms / 1000))
  end
  return 'welcome', math.max(0, daily_limit - used_today)
end

local function report_bans(reporters, threshold, already_banned)
  return not already_banned and reporters >= threshold
end

-- What PTTL says of a ban key, as admission() takes it: nil when no ban runs (-2), 0 for a
-- ban without an expiry (-1; retried in a second, like any ban about to end).
local function ban_left_ms(pttl)
  if pttl == -2 then
    return nil
  end
  return math.max(pttl, 0)
end
