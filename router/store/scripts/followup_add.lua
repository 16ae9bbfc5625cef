-- Store a follow-up once. The 'made' marker and the follow-up are written together or not at all (no
-- marker without its follow-up, should Redis fail); the kick flag is set in the same script as the
-- ZADD, so a dispatch that cleared it sees the id.
-- KEYS: made, follow-up, by-number set, due, kick.
-- ARGV: ttl, sealed fields, due score, due's TTL, '1' for 'now', kick TTL, id. -> {stored, kick}
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return {0, 0} end
redis.call('HSET', KEYS[2], 'sealed', ARGV[2], 'status', 'pending', 'by', KEYS[3])
redis.call('EXPIRE', KEYS[2], ARGV[1])
-- The number's set and the due set live as long as their longest follow-up: a TTL only ever grows, so
-- a 'now' follow-up booked after a 'tomorrow morning' one never lets a stop lose track of the first.
redis.call('SADD', KEYS[3], ARGV[7])
if redis.call('TTL', KEYS[3]) < tonumber(ARGV[1]) then redis.call('EXPIRE', KEYS[3], ARGV[1]) end
redis.call('ZADD', KEYS[4], ARGV[3], ARGV[7])
if redis.call('TTL', KEYS[4]) < tonumber(ARGV[4]) then redis.call('EXPIRE', KEYS[4], ARGV[4]) end
if ARGV[5] == '1' and redis.call('SET', KEYS[5], '1', 'NX', 'EX', ARGV[6]) then return {1, 1} end
return {1, 0}
