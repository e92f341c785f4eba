--[[
  Feeds a window-managed batch's submit window (add-rows.lua made it one): gives the next held
  rows, in manifest order, to the caller for their submit jobs, as many as bring the batch's
  fed-and-queued rows (queued - held - waitingBudget) back to its `submitWindow`. Rows are taken
  from `fedSeq` on; each row passed (fed, or no longer queued) moves `fedSeq` past it, and each
  queued one leaves `held`. While rows of the batch wait for budget (a batch with a budget), held
  rows are fed only while their `estimatedCredits` (less what they hold) fit the room left
  (budget - spent - reserved - uncertain, as wake.lua counts it, counted down here), in manifest
  order. A held row that does not fit even the room this call began with is parked here, as its
  job's reserve would park it, with no job run (it waits for a wake beside the batch's other parked
  rows, and the wake passes over it to cheaper ones), and the feed goes on to the rows behind it:
  a costly held row does not block cheaper rows behind it. The feed stops there instead (the row
  stays held: a raise, a release, a settle or a fed row's move feeds again) when the room left
  holds not even the batch's cheapest row (`minEstimate`, add-rows.lua), so rows that would only
  park are not walked; when the row fits the room the call began with (the rows fed before it may
  reserve less, or nothing); and when two windows' worth of the batch's rows (1,000 at least)
  already wait for budget (so a raise wakes about that many at once, not the batch). A batch without a budget never waits.

  Atomic, so two feeders never feed one row: the caller read a page of the order zset from the
  `fedSeq` it saw; rows of the page another feeder passed meanwhile (seq < fedSeq) are skipped.
  A crash between this step and the caller's job adds leaves rows queued below `fedSeq` without
  a job: the reconciler's to repair (it gives a queued row below `fedSeq` its job).

    Input:
      KEYS[1] batch hash, KEYS[2] its parked zset, KEYS[3..] the page's row hashes, in ARGV order
      ARGV[1] now: caller's clock, epoch ms ('' = Redis TIME)
      ARGV[2..] per row, 2 values: row id, seq (its score in the order zset), in seq order

    Output:
      {more (1: the page was used up with the window still short: read the next one), priority
       ('' = none), then per fed row: rowId, lineage (the submit lineage its job takes: the
       number of tasks it has)}
]]
--- @include "includes/tasks.lua"
--- @include "includes/budget.lua"
--- @include "includes/parked-min.lua"
local batchKey, parkedKey = KEYS[1], KEYS[2]
local b = redis.call('HMGET', batchKey, 'fedSeq', 'held', 'queued', 'waitingBudget', 'submitWindow', 'priority',
  'budget', 'creditsSpent', 'creditsReserved', 'creditsUncertain', 'cancelledAt', 'minEstimate')
-- A batch `cancel` ran on feeds nothing (its walk cancels the held rows; see wake.lua).
if not b[1] or b[11] then return { 0, '' } end
local fedSeq, held = tonumber(b[1]), num(b[2])
local want = num(b[5]) - (num(b[3]) - held - num(b[4]))
local out = { 0, b[6] or '' }
if held <= 0 or want <= 0 then return out end
-- The cheapest row of the batch (absent, from an earlier version: unknown, 0).
local cheapest = tonumber(b[12] or '') or 0
-- nil: no limit (no row waits, or the batch has no budget).
local room = nil
if num(b[4]) > 0 then
  room = room_of(b[7], b[8], b[9], b[10])
  -- Not even the cheapest row fits: no held row is read.
  if not fits(room, cheapest) then return out end
end
-- The room before this feed counts its fed rows down: a row that fits it may fit once they have
-- reserved or gone (one that reserves nothing, a reuse hit say, moves out of queued and feeds
-- again), so it stays held; only a row that does not fit even this is parked.
local roomBefore = room
-- Rows waiting for budget are kept to two windows' worth (1,000 at least) by the feed's parks:
-- what a raise wakes at once, and the rows the freeze passes and leaves in their keys for good
-- (freeze.ts). Past that, a row that does not fit stays held, and cheaper rows behind it wait for
-- a raise that fits it (or for the parked rows to go): the price of those two bounds.
local waiting, parkCap = num(b[4]), math.max(2 * num(b[5]), 1000)
local now = now_ms()
local fed, passedHeld, parked, nextSeq, stopped = 0, 0, 0, fedSeq, false
-- The cheapest row this call parks: the batch's bound on a parked row's cost comes down to it once.
local parkedLow = math.huge
for i = 2, #ARGV, 2 do
  local rowId, seq = ARGV[i], tonumber(ARGV[i + 1])
  local rowKey = KEYS[i / 2 + 2]
  if seq >= fedSeq then
    if fed >= want then break end
    local r = redis.call('HMGET', rowKey, 'status', 'waitingBudget', 'estimatedCredits', 'creditsReserved')
    if r[1] == 'queued' then
      -- A queued row above fedSeq that waits for budget (a retry that parked) has its wake.
      if r[2] ~= '1' then
        local cost = num(r[3]) - num(r[4])
        if room and not fits(room, cost) then
          -- No held row may fit, the row may fit soon, or the batch waits for a window's worth:
          -- stop here, this row stays held.
          if not fits(room, cheapest) or fits(roomBefore, cost) or waiting + parked >= parkCap then
            stopped = true
            break
          end
          if num(r[4]) == 0 then
            -- Parked as reserve.lua parks a row over the budget (it holds nothing to give back).
            redis.call('HSET', rowKey, 'waitingBudget', '1', 'updatedAt', now)
            redis.call('ZADD', parkedKey, seq, rowId)
            if cost < parkedLow then parkedLow = cost end
            parked = parked + 1
          else
            -- It holds a reservation (rare): its job's reserve gives it back as it parks the row.
            fed = fed + 1
            out[#out + 1] = rowId
            out[#out + 1] = task_count(rowKey)
          end
        else
          if room and cost > 0 then room = room - cost end
          fed = fed + 1
          out[#out + 1] = rowId
          out[#out + 1] = task_count(rowKey)
        end
      end
      passedHeld = passedHeld + 1
    end
    nextSeq = seq + 1
  end
end
if parked > 0 then
  redis.call('HINCRBY', batchKey, 'waitingBudget', parked)
  parked_lower(batchKey, parkedLow)
end
if nextSeq > fedSeq then
  redis.call('HSET', batchKey, 'fedSeq', nextSeq, 'updatedAt', now)
  -- (Never -0: HINCRBY refuses it.)
  if passedHeld > 0 then redis.call('HINCRBY', batchKey, 'held', -passedHeld) end
end
if not stopped and fed < want and held - passedHeld > 0 then out[1] = 1 end
return out
