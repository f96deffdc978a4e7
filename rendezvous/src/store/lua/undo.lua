-- A match that did not stand (its partner's side never took it; see Store::undo): the
-- partner's ticket is no longer "taken", and neither side keeps it as a last partner or as
-- one of today's matches. After prelude.lua. A holds the keys (store/keys.rs) and me, partner
-- (pseudonyms), partner_session, count_suffix.
redis.call('DEL', A.taken .. A.partner_session)
for _, pair in ipairs({{A.me, A.partner}, {A.partner, A.me}}) do
  if redis.call('GET', A.last .. pair[1]) == pair[2] then
    redis.call('DEL', A.last .. pair[1])
  end
  local count = A.count .. pair[1] .. A.count_suffix
  if tonumber(redis.call('GET', count) or '0') > 0 then
    redis.call('DECR', count)
  end
end
return 1
