--! include clock
-- A deletion to try again later, one attempt more; only if it is still queued (nobody finished it).
-- KEYS: due, info. ARGV: member, delay seconds, info, keep seconds. -> 1, or 0 if it was finished.
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], score(now() + tonumber(ARGV[2])), ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return 1
