--[[
  Adds to a batch's count of rows the reconciler repaired (gave back the job their state needs).
  A batch purged meanwhile is not recreated.

    Input:
      KEYS[1] batch hash
      ARGV[1] now: caller's clock, epoch ms ('' = Redis TIME; unused)
      ARGV[2] rows repaired

    Output:
      the batch's new count, or -1 when the batch does not exist
]]
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
return redis.call('HINCRBY', KEYS[1], 'repaired', ARGV[2])
