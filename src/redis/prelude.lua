--[[
  The prelude of every script (prepended by src/redis/script.ts).

  ARGV[1] of every script is the caller's clock: epoch ms (may be fractional), or '' for the
  Redis server's clock. Production leaves it empty, so every timestamp comes from Redis TIME, one
  clock for every machine of the fleet (whose own clocks disagree); tests give one to drive
  windows, pauses and expiries without sleeping. Redis >= 5 replicates script effects, so TIME
  before a write is allowed.
]]
local function now_us()
  local given = tonumber(ARGV[1])
  if given then return math.floor(given * 1000) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

local function now_ms()
  return math.floor(now_us() / 1000)
end

-- A hash field as a number: missing, empty or unparseable is 0.
local function num(v)
  if v == false or v == nil or v == '' then return 0 end
  return tonumber(v) or 0
end
