--! include clock
-- Lease what is due in a leased queue (router/store/queue.py): each member due by now is moved on by
-- the lease, so a worker that dies with it loses nothing (it comes due again). Atomic, so two workers
-- never lease the same member. With a prefix, a member whose item (prefix .. member) is gone (its TTL
-- ran out before any worker took it) is removed, not leased, and counted, so it is not taken again and
-- again. With an info hash, each member's info comes back with it; with keep seconds, a lease renews
-- the queue's TTLs.
-- KEYS: due, info ('' for none). ARGV: now ('' = Redis' clock), limit, lease seconds, prefix of items
-- that must exist ('' for none), keep seconds ('' to leave the TTLs).
-- -> {leased members, their infos ('' each without an info hash), number removed as expired}
local t = now(ARGV[1])
local members = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', score(t), 'LIMIT', 0, tonumber(ARGV[2]))
local leased, infos, expired = {}, {}, 0
for _, member in ipairs(members) do
  if ARGV[4] == '' or redis.call('EXISTS', ARGV[4] .. member) == 1 then
    redis.call('ZADD', KEYS[1], 'XX', score(t + tonumber(ARGV[3])), member)
    leased[#leased + 1] = member
    infos[#infos + 1] = (KEYS[2] ~= '' and redis.call('HGET', KEYS[2], member)) or ''
  else
    redis.call('ZREM', KEYS[1], member)
    expired = expired + 1
  end
end
if #leased > 0 and ARGV[5] ~= '' then
  redis.call('EXPIRE', KEYS[1], ARGV[5])
  if KEYS[2] ~= '' then redis.call('EXPIRE', KEYS[2], ARGV[5]) end
end
return {leased, infos, expired}
