-- Claim a follow-up to send it: lock, read and (for a 'pending' one) mark it 'sending', at once.
-- KEYS: lock, follow-up, due. ARGV: lock TTL, attempt_at, '1' to mark it 'sending' if it is 'pending', id.
-- -> false: another worker holds the lock; {}: nothing pending (the lock is released again, and the id
-- leaves the due set, should it still be there); else the hash as it was before marking (field, value,
-- ...). One that is 'sending' already is left as it is: the caller must first ask Twilio whether its
-- text went out, and mark it itself.
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return false end
local data = redis.call('HGETALL', KEYS[2])
if #data == 0 then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[3], ARGV[4])
  return data
end
if ARGV[3] == '1' and redis.call('HGET', KEYS[2], 'status') == 'pending' then
  redis.call('HSET', KEYS[2], 'status', 'sending', 'attempt_at', ARGV[2])
end
return data
