-- Shared by the deletion scripts (the loader puts it where a script includes `clock`):
-- Redis' own clock, so every web and worker process agrees on when an item is due, whatever its clock.
if redis.replicate_commands then redis.replicate_commands() end
local function now(given)
  if given and given ~= '' then return tonumber(given) end
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local function score(x) return string.format('%.6f', x) end
