-- Lease the follow-ups due now. Atomic, so two dispatchers never lease the same id. An id whose
-- follow-up is gone (its TTL ran out before any worker could send it: finishing and cancelling remove
-- the id themselves) is removed, not leased, so it is not dispatched again and again; the caller counts it.
-- KEYS: due. ARGV: now, limit, leased until, the follow-ups' prefix. -> {leased ids, number expired}
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local leased, expired = {}, 0
for _, fid in ipairs(ids) do
  if redis.call('EXISTS', ARGV[4] .. fid) == 1 then
    redis.call('ZADD', KEYS[1], 'XX', ARGV[3], fid)
    leased[#leased + 1] = fid
  else
    redis.call('ZREM', KEYS[1], fid)
    expired = expired + 1
  end
end
return {leased, expired}
