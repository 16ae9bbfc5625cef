-- Mark a follow-up as being sent, but only while it still exists (a plain HSET would bring back a
-- settled or cancelled one as a key without its TTL). KEYS: follow-up. ARGV: attempt_at. -> 1 or 0.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'status', 'sending', 'attempt_at', ARGV[1])
return 1
