--[[
  Marks a job's in-flight slot as alive.

    Input:
      KEYS[1] in-flight zset
      ARGV[1] now: caller's clock, epoch ms ('' = Redis TIME)
      ARGV[2] the slot's name, ARGV[3] staleAfterMs
      ARGV[4] its name as versions before deployments named slots wrote it (the job key alone):
              touched when ARGV[2] is not held (InFlight.members)

    Output:
      1 if the job held a slot, else 0
]]
local member = ARGV[2]
if redis.call('ZSCORE', KEYS[1], member) == false then
  if redis.call('ZSCORE', KEYS[1], ARGV[4]) == false then return 0 end
  member = ARGV[4]
end
redis.call('ZADD', KEYS[1], now_ms(), member)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
