-- The come-back drain scheduled with this token could not be published: let another be scheduled.
-- KEYS: next. ARGV: token.
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
