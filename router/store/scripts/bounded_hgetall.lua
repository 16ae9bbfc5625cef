-- HGETALL, but only of a hash no larger than anything the app writes (as bounded_get.lua).
-- KEYS: the hash. ARGV: the most fields, the most bytes a value. -> field, value, ... or -1: too many
-- fields, -2: a value too large.
local n = redis.call('HLEN', KEYS[1])
if n > tonumber(ARGV[1]) then return -1 end
local flat = redis.call('HGETALL', KEYS[1])
for i = 2, #flat, 2 do
  if string.len(flat[i]) > tonumber(ARGV[2]) then return -2 end
end
return flat
