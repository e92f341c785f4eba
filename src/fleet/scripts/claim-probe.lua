--[[
  Claims the pause's due probe: exactly one caller per interval gets it.

    Input:
      KEYS[1] pause hash
      ARGV[1] now: caller's clock, epoch ms ('' = Redis TIME)

    Output:
      the HGETALL after pushing nextProbeAt one interval forward, or nil when no probe is due
]]
local h = redis.call('HMGET', KEYS[1], 'nextProbeAt', 'probeEveryMs')
if not h[1] or not h[2] then return false end
local now = now_ms()
if tonumber(h[1]) > now then return false end
redis.call('HSET', KEYS[1], 'nextProbeAt', now + tonumber(h[2]))
return redis.call('HGETALL', KEYS[1])
