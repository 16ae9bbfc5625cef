-- A drain starts: any add from now on asks for another; the drain scheduled to come back (its token)
-- frees the way for the next come-back. KEYS: kick, next. ARGV: token ('' if this is not it).
redis.call('DEL', KEYS[1])
if ARGV[1] ~= '' and redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 1
