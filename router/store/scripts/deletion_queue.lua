-- Shared (the loader puts it where a script includes `deletion_queue`; it needs `clock` before it):
-- queue a deletion from Twilio, due `delay` seconds from now; an item already queued stays as it is.
-- Race-free by ordering: ZADD, then SET kick NX; a drain first deletes the kick flag, then leases.
-- -> 1: the caller should publish a drain (none was asked for yet), else 0.
local function queue_deletion(due, info, kick, member, final_at, keep, kick_seconds, delay)
  if redis.call('ZADD', due, 'NX', score(now() + tonumber(delay)), member) == 1 then
    redis.call('HSET', info, member, final_at .. '|0')
  end
  redis.call('EXPIRE', due, keep)
  redis.call('EXPIRE', info, keep)
  if redis.call('SET', kick, '1', 'NX', 'EX', kick_seconds) then return 1 end
  return 0
end
