--[[
  What a submitter reads before each create: the pause and the backoff, in one round trip.

    Input:
      KEYS[1] pause hash, KEYS[2] backoff hash
      ARGV[1] now: caller's clock, epoch ms ('' = Redis TIME)

    Output:
      {HGETALL of the pause, ms of backoff left (0 when none)}
]]
local untilMs = tonumber(redis.call('HGET', KEYS[2], 'until')) or 0
return {redis.call('HGETALL', KEYS[1]), math.max(0, untilMs - now_ms())}
