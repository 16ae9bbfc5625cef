--! include clock
-- If anything is queued and no drain is scheduled to come back for it: the seconds until the earliest
-- is due (capped), and this caller is the one to come back then.
-- KEYS: due, next. ARGV: cap seconds, margin seconds, token. -> '<seconds>' or false.
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #first == 0 then return false end
local delay = tonumber(first[2]) - now()
if delay < 0 then delay = 0 end
if delay > tonumber(ARGV[1]) then delay = tonumber(ARGV[1]) end
local ms = string.format('%d', math.floor((delay + tonumber(ARGV[2])) * 1000))
if redis.call('SET', KEYS[2], ARGV[3], 'NX', 'PX', ms) then return string.format('%.3f', delay) end
return false
