--[[
  A sliding window's rate in force and the span each admission holds its slot, read the same way
  by every script on the window (rate-acquire.lua, rate-restamp.lua): the fleet's shared rate from
  the config hash when there is one (a value that is not a number, hand-edited, leaves the
  caller's), then the margin, `fraction` of that window between `floor` and `cap` ms, added to it
  (so a fleet-wide rate change carries the margin along).

  Returns limit, and the window plus its margin in ms.
]]
local function window_in_force(config_key, limit, window_ms, fraction, floor, cap)
  if config_key then
    local cfg = redis.call('HMGET', config_key, 'limit', 'windowMs')
    limit = tonumber(cfg[1]) or limit
    window_ms = tonumber(cfg[2]) or window_ms
  end
  local margin = math.floor(window_ms * (tonumber(fraction) or 0) + 0.5)
  margin = math.min(tonumber(cap) or 0, math.max(tonumber(floor) or 0, margin))
  return limit, window_ms + margin
end
