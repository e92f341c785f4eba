--[[
  Marks a batch, or clears its marks: `cancelledAt` in its hash (kie-batch cancel sets it; a row
  of a cancelled batch whose generation fails is not resubmitted), or `purging` (purge sets it
  before it deletes the batch's rows: reserve.lua then reserves nothing, so no row of it is
  created meanwhile). A clear (retry: the batch is meant to run) lifts the cancel's mark only: a
  purge's stays until the purge, run again, deletes the batch (its rows are partly deleted and its
  counters still count them; `retry` and `enqueue` refuse such a batch). Only a batch that exists:
  never a hash of one field.

    Input:
      KEYS[1] batch hash
      ARGV[1] now: caller's clock, epoch ms ('' = Redis TIME)
      ARGV[2] '1' to mark, '' to clear
      ARGV[3] the mark: 'cancelledAt' or 'purging' (a clear lifts `cancelledAt` alone)

    Output:
      1, or 0 when the batch does not exist
]]
if redis.call('HEXISTS', KEYS[1], 'createdAt') == 0 then return 0 end
local mark = ARGV[3]
if mark ~= 'cancelledAt' and mark ~= 'purging' then return redis.error_reply('unknown mark') end
if ARGV[2] == '1' then
  redis.call('HSET', KEYS[1], mark, now_ms())
else
  redis.call('HDEL', KEYS[1], 'cancelledAt')
end
return 1
