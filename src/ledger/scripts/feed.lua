--[[
  Feeds a window-managed batch's submit window (add-rows.lua made it one): gives the next held
  rows, in manifest order, to the caller for their submit jobs, as many as bring the batch's
  fed-and-queued rows (queued - held - waitingBudget) back to its `submitWindow`. Rows are taken
  from `fedSeq` on; each row passed (fed, or no longer queued) moves `fedSeq` past it, and each
  queued one leaves `held`. While rows of the batch wait for budget (a batch with a budget), held
  rows are fed only while their `estimatedCredits` (less what they hold) fit the room left
  (budget - spent - reserved - uncertain, as wake.lua counts it, counted down here), in manifest
  order: the first that does not fit stops the feed (and stays held: a raise, a release or a settle
  feeds again). So one expensive parked row never blocks cheaper rows behind it, and rows that
  would only park beside it are not fed. A batch without a budget never waits.

  Atomic, so two feeders never feed one row: the caller read a page of the order zset from the
  `fedSeq` it saw; rows of the page another feeder passed meanwhile (seq < fedSeq) are skipped.
  A crash between this step and the caller's job adds leaves rows queued below `fedSeq` without
  a job: the reconciler's to repair (it gives a queued row below `fedSeq` its job).

    Input:
      KEYS[1] batch hash, KEYS[2..] the page's row hashes, in ARGV order
      ARGV[1] now: caller's clock, epoch ms ('' = Redis TIME)
      ARGV[2..] per row, 2 values: row id, seq (its score in the order zset), in seq order

    Output:
      {more (1: the page was used up with the window still short: read the next one), priority
       ('' = none), then per fed row: rowId, lineage (the submit lineage its job takes: the
       number of tasks it has)}
]]
--- @include "includes/tasks.lua"
--- @include "includes/budget.lua"
local batchKey = KEYS[1]
local b = redis.call('HMGET', batchKey, 'fedSeq', 'held', 'queued', 'waitingBudget', 'submitWindow', 'priority',
  'budget', 'creditsSpent', 'creditsReserved', 'creditsUncertain', 'cancelledAt')
-- A batch `cancel` ran on feeds nothing (its walk cancels the held rows; see wake.lua).
if not b[1] or b[11] then return { 0, '' } end
local fedSeq, held = tonumber(b[1]), num(b[2])
local want = num(b[5]) - (num(b[3]) - held - num(b[4]))
local out = { 0, b[6] or '' }
if held <= 0 or want <= 0 then return out end
-- nil: no limit (no row waits, or the batch has no budget).
local room = nil
if num(b[4]) > 0 then
  room = room_of(b[7], b[8], b[9], b[10])
  if not fits(room, 0) then return out end
end

local fed, passedHeld, nextSeq, stopped = 0, 0, fedSeq, false
for i = 2, #ARGV, 2 do
  local rowId, seq = ARGV[i], tonumber(ARGV[i + 1])
  if seq >= fedSeq then
    if fed >= want then break end
    local r = redis.call('HMGET', KEYS[i / 2 + 1], 'status', 'waitingBudget', 'estimatedCredits', 'creditsReserved')
    if r[1] == 'queued' then
      -- A queued row above fedSeq that waits for budget (a retry that parked) has its wake.
      if r[2] ~= '1' then
        if room then
          local cost = num(r[3]) - num(r[4])
          if not fits(room, cost) then
            stopped = true
            break
          end
          if cost > 0 then room = room - cost end
        end
        fed = fed + 1
        out[#out + 1] = rowId
        out[#out + 1] = task_count(KEYS[i / 2 + 1])
      end
      passedHeld = passedHeld + 1
    end
    nextSeq = seq + 1
  end
end
if nextSeq > fedSeq then
  redis.call('HSET', batchKey, 'fedSeq', nextSeq, 'updatedAt', now_ms())
  -- (Never -0: HINCRBY refuses it.)
  if passedHeld > 0 then redis.call('HINCRBY', batchKey, 'held', -passedHeld) end
end
if not stopped and fed < want and held - passedHeld > 0 then out[1] = 1 end
return out
