--[[
  Sets or clears a batch's budget.

    Input:
      KEYS[1] batch hash
      ARGV[1] now: caller's clock, epoch ms ('' = Redis TIME)
      ARGV[2] budget ('' = remove it)

    Output:
      1, or 0 when the batch does not exist
]]
local batchKey = KEYS[1]
if redis.call('EXISTS', batchKey) == 0 then return 0 end
if ARGV[2] == '' then
  redis.call('HDEL', batchKey, 'budget')
else
  redis.call('HSET', batchKey, 'budget', ARGV[2])
end
redis.call('HSET', batchKey, 'updatedAt', now_ms())
return 1
