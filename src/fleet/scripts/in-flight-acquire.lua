--[[
  Takes an in-flight slot for a job, unless the cap is reached. Slots untouched for
  staleAfterMs are dropped first (their job is gone).

    Input:
      KEYS[1] in-flight zset, slot name (`<deployment>:<job key>`) -> last touched (ms)
      ARGV[1] now: caller's clock, epoch ms ('' = Redis TIME)
      ARGV[2] slot name, ARGV[3] max (0 = no cap), ARGV[4] staleAfterMs

    Output:
      1 when the job holds a slot afterwards (taken now, or already held), else 0
]]
local now = now_ms()
local stale = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - stale)
local max = tonumber(ARGV[3])
if redis.call('ZSCORE', KEYS[1], ARGV[2]) == false and max > 0 and redis.call('ZCARD', KEYS[1]) >= max then
  return 0
end
redis.call('ZADD', KEYS[1], now, ARGV[2])
redis.call('PEXPIRE', KEYS[1], stale)
return 1
