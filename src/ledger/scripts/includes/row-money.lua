--[[
  What the money scripts (reserve, settle, release, budget-uncertain) share. Included by their
  `--- @include` line; expects KEYS[1] batch hash, KEYS[2] row hash.

  Money: a row holds at most one reservation at a time (`creditsReserved` on the row), for its
  next create attempt; the batch's `creditsReserved` is the sum over its rows. Spent credits only
  ever grow, once per task; uncertain credits (attempts that may have been charged unseen) only
  ever grow. The budget bounds spent + reserved + uncertain.
]]
local batchKey, rowKey = KEYS[1], KEYS[2]
-- How long the batch's reserved-ended set (keys.ts `reservedEnded`) outlives its last add: the
-- reconciler empties it within a sweep; this only bounds a set nothing sweeps (a deployment gone).
local RESERVED_ENDED_TTL_MS = 30 * 24 * 3600 * 1000

-- A money script on a missing row or batch changes nothing and returns 'missing'.
local function row_missing()
  return redis.call('EXISTS', batchKey) == 0 or redis.call('EXISTS', rowKey) == 0
end

local function touch(now)
  redis.call('HSET', rowKey, 'updatedAt', now)
  redis.call('HSET', batchKey, 'updatedAt', now)
end

-- Moves the row's reservation out of the batch's. Returns the credits released, as a string.
local function release()
  local held = redis.call('HGET', rowKey, 'creditsReserved')
  if held and num(held) ~= 0 then
    -- Negate the stored text itself: a round trip through a Lua number may round it.
    local negated = '-' .. held
    if string.sub(held, 1, 1) == '-' then negated = string.sub(held, 2) end
    redis.call('HINCRBYFLOAT', batchKey, 'creditsReserved', negated)
    -- Gone rather than '0' (read as 0): a smaller row hash (issue 10), the same money.
    redis.call('HDEL', rowKey, 'creditsReserved')
    return held
  end
  return '0'
end

-- A task's settle guard on the row, and whether the task is settled: `settled:<task>`, or, for a
-- task recorded as `task:<id>` (includes/tasks.lua), its ordinal's `s:<n>` (the task id is not
-- written a third time). Either guard found means settled (settle.lua writes the one returned).
local function settle_guard(task)
  local guard = 'settled:' .. task
  local settled = redis.call('HEXISTS', rowKey, guard) == 1
  local ordinal = task ~= '' and redis.call('HGET', rowKey, 'task:' .. task)
  if ordinal then
    guard = 's:' .. ordinal
    if redis.call('HEXISTS', rowKey, guard) == 1 then settled = true end
  end
  return guard, settled
end

-- Whether a task's charge is accounted for: settled (its cost counted in creditsSpent) or kept as
-- uncertain (`uncertain:<task>`, budget-uncertain.lua). A task neither may still be charged.
local function task_accounted(task)
  local _, settled = settle_guard(task)
  return settled or redis.call('HEXISTS', rowKey, 'uncertain:' .. task) == 1
end
