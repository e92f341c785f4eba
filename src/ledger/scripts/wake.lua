--[[
  Wakes parked rows (reserve.lua parked them over the budget, with no job): in the order given
  (the parked set's, manifest order), each row still parked gets its reservation now, at its
  `estimatedCredits`, if it fits the room the budget has left (spent + reserved + uncertain), and
  leaves the parked set and the waiting count. A row that does not fit is passed and waits on:
  cheaper rows after it in the page are woken (in manifest order), never held back by it. Without a budget every row given is woken (and reserves, as reserve.lua does).
  A given row that is no longer parked (moved on, or woken by another caller) is dropped from the
  set. The caller adds a submit job for each woken row; a lost add is the reconciler's to repair
  (the row is queued, no longer parked, with no job).

    Input:
      KEYS[1] batch hash, KEYS[2] the batch's parked zset, KEYS[3..] row hashes
      ARGV[1] now: caller's clock, epoch ms ('' = Redis TIME)
      ARGV[2..] row ids, in KEYS[3..] order

    Output:
      {full (1 when a row of the page did not fit: the caller asks for no further page), rowId,
       lineage, rowId, lineage, ...}: each woken row and
      the submit lineage its job takes (the number of tasks it has)
]]
--- @include "includes/tasks.lua"
--- @include "includes/budget.lua"
local batchKey, parkedKey = KEYS[1], KEYS[2]
if redis.call('EXISTS', batchKey) == 0 then return { 0 } end
-- A batch `cancel` ran on wakes nothing: its walk cancels the parked rows, and a row woken before
-- the walk reaches it could be created and paid for (a settle's wake during a cancel). `retry` and
-- an append clear the mark.
if redis.call('HEXISTS', batchKey, 'cancelledAt') == 1 then return { 1 } end
local room = budget_room(batchKey)
-- No room at all: no parked row fits (each holds nothing and costs more than nothing: reserve.lua
-- gives a row's reservation back as it parks it), so the page is not read row by row.
if room ~= nil and room <= 0 then return { 1 } end
local now = now_ms()
local out = { 0 }
local woken = 0
for i = 2, #ARGV do
  local rowId, rowKey = ARGV[i], KEYS[i + 1]
  local r = redis.call('HMGET', rowKey, 'status', 'waitingBudget', 'estimatedCredits', 'creditsReserved')
  if r[1] ~= 'queued' or r[2] ~= '1' then
    redis.call('ZREM', parkedKey, rowId)
  else
    local held = num(r[4])
    local delta = num(r[3]) - held
    local fit = delta <= 0 or fits(room, delta)
    -- A row that does not fit is passed, not waited behind: a cheaper row after it in the page may
    -- fit (rows of one batch differ by acceleration and model). Rows past this page wait for the
    -- next wake (the caller asks for no further page once a row did not fit).
    if not fit then
      out[1] = 1
    else
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
      local lineage = task_count(rowKey)
      out[#out + 1] = rowId
      out[#out + 1] = lineage
    end
  end
end
if woken > 0 then
  redis.call('HINCRBY', batchKey, 'waitingBudget', -woken)
  redis.call('HSET', batchKey, 'updatedAt', now)
end
return out
