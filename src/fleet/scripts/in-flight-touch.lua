--[[
  Marks a job's in-flight slot as alive.

    Input:
      KEYS[1] in-flight zset
      ARGV[1] now: caller's clock, epoch ms ('' = Redis TIME)
      ARGV[2] job key, ARGV[3] staleAfterMs

    Output:
      1 if the job held a slot, else 0
]]
if redis.call('ZSCORE', KEYS[1], ARGV[2]) == false then return 0 end
redis.call('ZADD', KEYS[1], now_ms(), ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
