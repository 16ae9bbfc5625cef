-- Forget a follow-up: its number and text, its place in the due set and in its number's set.
-- Finishing (sent or cancelled) does it whatever is left; settling (a status callback named it) only
-- if the follow-up is still there.
-- KEYS: due, lock ('' to leave it). ARGV: the follow-ups' prefix, id, '1' to settle (only if still there).
-- -> 1 if the follow-up was finished now, 0 if settling found it gone.
local key = ARGV[1] .. ARGV[2]
if ARGV[3] == '1' and redis.call('EXISTS', key) == 0 then return 0 end
local by = redis.call('HGET', key, 'by')
redis.call('DEL', key)
redis.call('ZREM', KEYS[1], ARGV[2])
if by then redis.call('SREM', by, ARGV[2]) end
if KEYS[2] and KEYS[2] ~= '' then redis.call('DEL', KEYS[2]) end
return 1
