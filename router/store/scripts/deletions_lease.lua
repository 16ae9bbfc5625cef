--! include clock
-- Lease up to ARGV[1] due deletions: each is moved ARGV[2] seconds on, so a drain that dies loses
-- nothing (its items come due again).
-- KEYS: due, info. ARGV: limit, lease seconds, now ('' = Redis' clock), keep seconds.
-- -> member, info, member, info, ... of the leased items.
local t = now(ARGV[3])
local members = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', score(t), 'LIMIT', 0, tonumber(ARGV[1]))
local out = {}
for _, member in ipairs(members) do
  redis.call('ZADD', KEYS[1], 'XX', score(t + tonumber(ARGV[2])), member)
  out[#out + 1] = member
  out[#out + 1] = redis.call('HGET', KEYS[2], member) or ''
end
if #members > 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[4])
  redis.call('EXPIRE', KEYS[2], ARGV[4])
end
return out
