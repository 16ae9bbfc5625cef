-- An urgent text (999, 55, help, a stop, words of crisis) past every other limit: answered if this
-- sender had fewer than ARGV[2] such answers in the last minute (a sliding window), so never silenced
-- for long.
-- KEYS: the sender's urgent answers. ARGV: now (seconds), the most a minute. -> 1 (answer it) or 0.
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 60)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('EXPIRE', KEYS[1], 60)
return 1
