-- Deletions done (or given up on): forget them. KEYS: due, info. ARGV: members.
redis.call('ZREM', KEYS[1], unpack(ARGV))
redis.call('HDEL', KEYS[2], unpack(ARGV))
return 1
