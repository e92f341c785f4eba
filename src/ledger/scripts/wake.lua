--[[
  Wakes parked rows (reserve.lua parked them over the budget, with no job): in the order given
  (a page of the parked set, manifest order), each row still parked gets its reservation now, at
  its `estimatedCredits`, if it fits the room the budget has left (spent + reserved + uncertain),
  and leaves the parked set and the waiting count. A row that does not fit is passed and waits on:
  cheaper rows after it are woken (in manifest order), never held back by it, in this page or the
  next: the caller walks the set page by page while the room may still hold a parked row (the
  batch's bound on a parked row's cost, includes/parked-min.lua), so cheap rows behind a page of
  dear ones are found. Without a budget every row given is woken (and reserves, as reserve.lua
  does). A given row that is no longer parked (moved on, or woken by another caller) is dropped
  from the set. The caller adds a submit job for each woken row; a lost add is the reconciler's to
  repair (the row is queued, no longer parked, with no job).

    Input:
      KEYS[1] batch hash, KEYS[2] the batch's parked zset, KEYS[3..] row hashes
      ARGV[1] now: caller's clock, epoch ms ('' = Redis TIME)
      ARGV[2] the walk's token (parked-min.lua), ARGV[3] '1': this page is the set's first (the
        walk begins), ARGV[4] '1': this page ends the set (no parked row after its last when the
        caller read it), ARGV[5] the page's last seq (its score in the parked zset)
      ARGV[6..] row ids, in KEYS[3..] order

    Output:
      {stop (1: ask for no further page: the room holds no parked row, or the set ended), priority
       (the batch's submit priority, enqueue --priority; '' = none), rowId, lineage, rowId,
       lineage, ...}: each woken row and the submit lineage its job takes (the number of tasks it
       has); a woken row's job takes the batch's priority, as its first job did
]]
--- @include "includes/tasks.lua"
--- @include "includes/budget.lua"
--- @include "includes/parked-min.lua"
local batchKey, parkedKey = KEYS[1], KEYS[2]
-- How long a walk that reads no further page (its caller died) keeps the set's reading.
local WALK_TAKEOVER_MS = 120000
local token, first, last = ARGV[2], ARGV[3] == '1', ARGV[4] == '1'
if redis.call('EXISTS', batchKey) == 0 then return { 1, '' } end
-- A batch `cancel` ran on wakes nothing: its walk cancels the parked rows, and a row woken before
-- the walk reaches it could be created and paid for (a settle's wake during a cancel). `retry` and
-- an append clear the mark.
if redis.call('HEXISTS', batchKey, 'cancelledAt') == 1 then return { 1, '' } end
local room = budget_room(batchKey)
local b = redis.call('HMGET', batchKey, 'parkedMin', 'walkId', 'walkMin', 'walkAt')
local bound = parked_cost(b[1]) or 0
-- 'none' (the set was empty) with rows given: parked by other means than reserve.lua, unknown.
if bound == math.huge then bound = 0 end
-- Whether the room may hold some parked row: no room at all, or less than the cheapest parked row
-- may cost, and no row of the set fits, so it is not read row by row.
local function may_fit()
  return room == nil or (room > 0 and fits(room, bound))
end
if not may_fit() then return { 1, '' } end

local now = now_ms()
local ours = b[2] == token
-- Only the walk that owns the set's reading counts what it passes.
local walkMin = nil
if ours then walkMin = parked_cost(b[3]) end
-- A walk owns the set's reading while it goes on (each page refreshes `walkAt`): one begun while
-- another is under way wakes rows as well but learns nothing, else settles coming faster than a
-- walk of a long set would each take it over, and none would learn the bound.
if first and (not b[2] or num(b[4]) + WALK_TAKEOVER_MS <= now) then
  ours, walkMin = true, math.huge
  -- A row parked between the caller's read of this page and now, inside the page's span (or past
  -- it, when the page ends the set), was not given: the walk cannot know its cost.
  local given = {}
  for i = 6, #ARGV do given[ARGV[i]] = true end
  local span = ARGV[5]
  if last then span = '+inf' end
  for _, rowId in ipairs(redis.call('ZRANGEBYSCORE', parkedKey, '-inf', span)) do
    if not given[rowId] then walkMin = 0 end
  end
end

local out = { 0, redis.call('HGET', batchKey, 'priority') or '' }
local woken = 0
for i = 6, #ARGV do
  local rowId, rowKey = ARGV[i], KEYS[i - 3]
  local r = redis.call('HMGET', rowKey, 'status', 'waitingBudget', 'estimatedCredits', 'creditsReserved')
  if r[1] ~= 'queued' or r[2] ~= '1' then
    redis.call('ZREM', parkedKey, rowId)
  else
    local held = num(r[4])
    local delta = num(r[3]) - held
    if delta <= 0 or fits(room, delta) then
      if delta > 0 then
        local deltaText = r[3]
        if held ~= 0 then deltaText = tostring(delta) end
        redis.call('HINCRBYFLOAT', rowKey, 'creditsReserved', deltaText)
        redis.call('HINCRBYFLOAT', batchKey, 'creditsReserved', deltaText)
        if room then room = room - delta end
      end
      redis.call('HDEL', rowKey, 'waitingBudget')
      redis.call('HSET', rowKey, 'updatedAt', now)
      redis.call('ZREM', parkedKey, rowId)
      woken = woken + 1
      out[#out + 1] = rowId
      out[#out + 1] = task_count(rowKey)
    elseif walkMin and delta < walkMin then
      -- Passed, not waited behind: a cheaper row after it may fit (rows of one batch differ by
      -- acceleration and model). Its cost is the walk's to know.
      walkMin = delta
    end
  end
end
if woken > 0 then
  redis.call('HINCRBY', batchKey, 'waitingBudget', -woken)
  redis.call('HSET', batchKey, 'updatedAt', now)
end
local stop = last or not may_fit()
if ours then
  if last then
    -- The whole set walked from its start, with every park since counted: the bound is exact.
    redis.call('HSET', batchKey, 'parkedMin', parked_cost_text(walkMin))
    redis.call('HDEL', batchKey, 'walkId', 'walkMin', 'walkAt')
  elseif stop then
    -- Ended early (no room left for any parked row): the next walk may take the set at once.
    redis.call('HDEL', batchKey, 'walkId', 'walkMin', 'walkAt')
  else
    redis.call('HSET', batchKey, 'walkId', token, 'walkMin', parked_cost_text(walkMin), 'walkAt', now)
  end
end
if stop then out[1] = 1 end
return out
