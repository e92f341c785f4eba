--[[
  Marks a batch cancelled, or clears the mark: `cancelledAt` in its hash (kie-batch cancel sets
  it, retry clears it); a row of a cancelled batch whose generation fails is not resubmitted.
  Only a batch that exists: never a hash of one field.

    Input:
      KEYS[1] batch hash
      ARGV[1] now: caller's clock, epoch ms ('' = Redis TIME)
      ARGV[2] '1' to mark, '' to clear

    Output:
      1, or 0 when the batch does not exist
]]
if redis.call('HEXISTS', KEYS[1], 'createdAt') == 0 then return 0 end
if ARGV[2] == '1' then
  redis.call('HSET', KEYS[1], 'cancelledAt', now_ms())
else
  redis.call('HDEL', KEYS[1], 'cancelledAt')
end
return 1
