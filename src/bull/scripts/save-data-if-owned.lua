--[[
  Stores a job's data only while the caller holds the job's lock, and holds it for another lock
  period: BullMQ's extendLock and updateData in one step. A run whose lock lapsed (Redis away, a
  stalled event loop) can then neither write a submit's `creating` mark after another run took
  the job (and so create unmarked), nor erase the mark of the run that holds it now.

    Input:
      KEYS[1] the job's lock (`<queue>:<id>:lock`), KEYS[2] the queue's stalled set,
      KEYS[3] the job hash
      ARGV[1] now: caller's clock (unused)
      ARGV[2] the caller's lock token
      ARGV[3] lock duration, ms
      ARGV[4] the job id
      ARGV[5] the job's data, JSON

    Output:
      1 stored; 0 not the holder or no such job (nothing written)
]]
if redis.call('GET', KEYS[1]) ~= ARGV[2] then return 0 end
if redis.call('EXISTS', KEYS[3]) == 0 then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('SREM', KEYS[2], ARGV[4])
redis.call('HSET', KEYS[3], 'data', ARGV[5])
return 1
