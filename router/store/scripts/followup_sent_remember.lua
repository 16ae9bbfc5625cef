-- Remember the sid of a follow-up's text whose creation we know of; older entries are trimmed, so the
-- set stays a day's sends. KEYS: sids. ARGV: sid, now, keep seconds.
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[2]) - tonumber(ARGV[3]))
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
