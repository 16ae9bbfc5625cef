-- A place for a follow-up within the limits (router/store/limits.py), checked and counted at once.
-- KEYS: the id's 'made' marker (a retried webhook), same service + number, per number.
-- ARGV: per-number max, per-minute max, a day (s), the prefix of the per-minute counters, the minute it
-- is due (epoch // 60), how many minutes it may be put back, now (seconds).
-- -> {'ok'|'dup'|'already'|'per_number', minutes put back}. The minutes' counters are named from the
-- prefix (one Redis primary, as deployed; Cluster would need hash tags).
if redis.call('EXISTS', KEYS[1]) == 1 then return {'dup', 0} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {'already', 0} end
if tonumber(redis.call('GET', KEYS[3]) or '0') >= tonumber(ARGV[1]) then return {'per_number', 0} end
local due, most, now = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local late = 0
while late < most and tonumber(redis.call('GET', ARGV[4] .. (due + late)) or '0') >= tonumber(ARGV[2]) do
  late = late + 1
end
local minute = ARGV[4] .. (due + late)
redis.call('INCR', minute)
if redis.call('TTL', minute) < 0 then
  redis.call('EXPIRE', minute, math.max(120, (due + late + 2) * 60 - now))
end
redis.call('SET', KEYS[2], '1', 'EX', ARGV[3])
redis.call('INCR', KEYS[3])
if redis.call('TTL', KEYS[3]) < 0 then redis.call('EXPIRE', KEYS[3], ARGV[3]) end
return {'ok', late}
