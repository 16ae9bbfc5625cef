--! include clock
-- Queue a deletion from Twilio, due ARGV[5] seconds from now; an item already queued stays as it is.
-- Race-free by ordering: ZADD, then SET kick NX; a drain first deletes the kick flag, then leases.
-- KEYS: due, info, kick. ARGV: member, final_at, keep seconds, kick seconds, delay.
-- -> 1: the caller should publish a drain (none was asked for yet).
if redis.call('ZADD', KEYS[1], 'NX', score(now() + tonumber(ARGV[5])), ARGV[1]) == 1 then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. '|0')
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
if redis.call('SET', KEYS[3], '1', 'NX', 'EX', ARGV[4]) then return 1 end
return 0
