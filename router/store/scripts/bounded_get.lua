-- GET, but only a value no larger than anything the app writes: a larger one is refused unread (a
-- release record or file someone wrote into Redis to make every web worker parse megabytes).
-- KEYS: the key. ARGV: the most bytes. -> the value (or false when there is none), or -1: too large.
if redis.call('STRLEN', KEYS[1]) > tonumber(ARGV[1]) then return -1 end
return redis.call('GET', KEYS[1])
