--[[
  What a submitter reads before each create: the pause and the backoff, in one round trip.

    Input:
      KEYS[1] pause hash, KEYS[2] backoff hash
      ARGV[1] now: caller's clock, epoch ms ('' = Redis TIME)

    Output:
      {HGETALL of the pause, ms of backoff left (0 when none),
       1 when a backoff record is there at all (running, or spent and not cleared yet), else 0}
]]
local untilMs = tonumber(redis.call('HGET', KEYS[2], 'until'))
return {redis.call('HGETALL', KEYS[1]), math.max(0, (untilMs or 0) - now_ms()), untilMs and 1 or 0}
