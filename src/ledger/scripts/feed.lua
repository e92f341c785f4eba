--[[
  Feeds a window-managed batch's submit window (add-rows.lua made it one): gives the next held
  rows, in manifest order, to the caller for their submit jobs, as many as bring the batch's
  fed-and-queued rows (queued - held - waitingBudget) back to its `submitWindow`. Rows are taken
  from `fedSeq` on; each row passed (fed, or no longer queued) moves `fedSeq` past it, and each
  queued one leaves `held`. Nothing is fed while rows of the batch wait for budget: a fed row
  would only park beside them (their wake, and the moves out of queued after it, feed again).

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
local batchKey = KEYS[1]
local b = redis.call('HMGET', batchKey, 'fedSeq', 'held', 'queued', 'waitingBudget', 'submitWindow', 'priority')
if not b[1] then return { 0, '' } end
local fedSeq, held = tonumber(b[1]), num(b[2])
local want = num(b[5]) - (num(b[3]) - held - num(b[4]))
local out = { 0, b[6] or '' }
if held <= 0 or num(b[4]) > 0 or want <= 0 then return out end

local fed, passedHeld, nextSeq = 0, 0, fedSeq
for i = 2, #ARGV, 2 do
  local rowId, seq = ARGV[i], tonumber(ARGV[i + 1])
  if seq >= fedSeq then
    if fed >= want then break end
    local r = redis.call('HMGET', KEYS[i / 2 + 1], 'status', 'waitingBudget')
    if r[1] == 'queued' then
      passedHeld = passedHeld + 1
      -- A queued row above fedSeq that waits for budget (a retry that parked) has its wake.
      if r[2] ~= '1' then
        fed = fed + 1
        out[#out + 1] = rowId
        out[#out + 1] = task_count(KEYS[i / 2 + 1])
      end
    end
    nextSeq = seq + 1
  end
end
if nextSeq > fedSeq then
  redis.call('HSET', batchKey, 'fedSeq', nextSeq, 'updatedAt', now_ms())
  -- (Never -0: HINCRBY refuses it.)
  if passedHeld > 0 then redis.call('HINCRBY', batchKey, 'held', -passedHeld) end
end
if fed < want and held - passedHeld > 0 then out[1] = 1 end
return out
