--[[
  Settles a task's cost: releases the row's reservation (when the task is the row's current one:
  the reservation is its attempt's) and adds `spent`, once per task (the
  given taskId, else the row's current one, else the row itself), guarded by a `settled:<task>`
  field on the row (`s:<n>` for a task recorded as the row's n-th `task:<id>`), so a retried poll or archive job never counts a task twice.

    Input:
      KEYS[1] batch hash, KEYS[2] row hash, KEYS[3] the batch's progress hash (progress.ts),
      KEYS[4] the batch's parked zset (parked.ts)
      ARGV[1] now: caller's clock, epoch ms ('' = Redis TIME)
      ARGV[2] spent, ARGV[3] taskId ('' = the row's current one)

    Output:
      {'settled' | 'already-settled' | 'missing', rows parked in the batch now (ZCARD): the
       caller wakes them only when there are any, without a read of its own}
]]
--- @include "includes/row-money.lua"
--- @include "includes/tasks.lua"
if row_missing() then return { 'missing', 0 } end
local task = ARGV[3]
if task == '' then task = current_task(rowKey) end
local guard, settled = settle_guard(task)
if settled then return { 'already-settled', 0 } end
-- The row's reservation is its current attempt's: a late answer about a task the row has left
-- (counted uncertain, then resubmitted) adds its cost and leaves the new attempt's reservation
-- held, also while that attempt is not recorded yet (the row queued: the old task still reads as
-- current) or the row was cancelled (its submit job gives back what it holds).
local status = redis.call('HGET', rowKey, 'status')
if task == current_task(rowKey) and status ~= 'queued' and status ~= 'cancelled' then release() end
-- A task counted uncertain (unknown past the grace) and found after all: its charge is now known.
local uncertain = redis.call('HGET', rowKey, 'uncertain:' .. task)
if uncertain then
  local back = '-' .. uncertain
  if string.sub(uncertain, 1, 1) == '-' then back = string.sub(uncertain, 2) end
  if num(uncertain) ~= 0 then
    redis.call('HINCRBYFLOAT', rowKey, 'creditsUncertain', back)
    redis.call('HINCRBYFLOAT', batchKey, 'creditsUncertain', back)
  end
  redis.call('HDEL', rowKey, 'uncertain:' .. task)
end
redis.call('HINCRBYFLOAT', rowKey, 'creditsSpent', ARGV[2])
redis.call('HINCRBYFLOAT', batchKey, 'creditsSpent', ARGV[2])
redis.call('HSET', rowKey, guard, ARGV[2])
local now = now_ms()
-- Credits per minute for the dashboard's chart. A side key of the batch (batch-keys.ts): made
-- here on a batch already set to expire (a late settle), it takes the batch's expiry.
if num(ARGV[2]) ~= 0 then
  local progressKey = KEYS[3]
  local fresh = redis.call('EXISTS', progressKey) == 0
  redis.call('HINCRBYFLOAT', progressKey, 'c:' .. math.floor(now / 60000), ARGV[2])
  local ttl = redis.call('PTTL', batchKey)
  if fresh and ttl > 0 then redis.call('PEXPIRE', progressKey, ttl) end
end
touch(now)
return { 'settled', redis.call('ZCARD', KEYS[4]) }
