--[[
  Settling a task's cost (settle.lua, and transition.lua's `settle` argument: the poll's settle
  sent with its move to `archiving`, one call). Expects includes/row-money.lua and
  includes/tasks.lua before it (KEYS[1] batch hash, KEYS[2] row hash).

  The row's reservation is released (when the task is the row's current one: the reservation is
  its attempt's) and `spent` added, once per task (the given taskId, else the row's current one,
  else the row itself), guarded by a `settled:<task>` field on the row (`s:<n>` for a task
  recorded as the row's n-th `task:<id>`), so a retried poll or archive job never counts a task
  twice. Returns 'settled' or 'already-settled'.
]]
local function settle_task(task, spent, progressKey)
  if task == '' then task = current_task(rowKey) end
  local guard, settled = settle_guard(task)
  if settled then return 'already-settled' end
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
  redis.call('HINCRBYFLOAT', rowKey, 'creditsSpent', spent)
  redis.call('HINCRBYFLOAT', batchKey, 'creditsSpent', spent)
  redis.call('HSET', rowKey, guard, spent)
  local now = now_ms()
  -- Credits per minute for the dashboard's chart. A side key of the batch (batch-keys.ts): made
  -- here on a batch already set to expire (a late settle), it takes the batch's expiry.
  if num(spent) ~= 0 then
    local fresh = redis.call('EXISTS', progressKey) == 0
    redis.call('HINCRBYFLOAT', progressKey, 'c:' .. math.floor(now / 60000), spent)
    local ttl = redis.call('PTTL', batchKey)
    if fresh and ttl > 0 then redis.call('PEXPIRE', progressKey, ttl) end
  end
  touch(now)
  return 'settled'
end
