--[[
  Reserves credits for a row's next create attempt against its batch's budget (spent + reserved +
  uncertain). One reservation per attempt: an attempt that may have created a task gives its
  reservation up to `creditsUncertain` (budget-uncertain.lua), so the next attempt reserves anew.
  Idempotent per row: a row that already holds at least `credits` reserves nothing more (a job
  re-run before its create went out does not reserve twice), unless the batch is over its budget
  (lowered since): then what it holds goes back and it waits. Over budget, the row is marked as
  waiting (counted once) and parked: added to the batch's parked set by its seq, so it needs no
  job while it waits (its job ends; wake.lua picks it up when the budget has room again, in
  manifest order), and the batch's bound on a parked row's cost (includes/parked-min.lua) comes
  down to its credits.

    Input:
      KEYS[1] batch hash, KEYS[2] row hash, KEYS[3] the batch's parked zset, KEYS[4] its
        reserved-ended set (a row that reserves while not queued, cancelled meanwhile say, is
        added: its job gives the reservation back, and the reconciler if that job dies first)
      ARGV[1] now: caller's clock, epoch ms ('' = Redis TIME)
      ARGV[2] credits, ARGV[3] row id

    Output:
      'reserved' | 'no-budget' (reserved; the batch has none) | 'over-budget' | 'missing' |
      'purging' (`purge` marked the batch before deleting it: nothing reserved, nothing created) |
      'cancelled' (`cancel` marked the batch: nothing reserved; the caller cancels the row, which
      the cancel's walk would have, had it reached it: a walk cut short, or still on its way)
]]
--- @include "includes/row-money.lua"
--- @include "includes/budget.lua"
--- @include "includes/parked-min.lua"
if row_missing() then return 'missing' end
if redis.call('HEXISTS', batchKey, 'purging') == 1 then return 'purging' end
if redis.call('HEXISTS', batchKey, 'cancelledAt') == 1 then return 'cancelled' end
local now = now_ms()
local rowId = ARGV[3]
-- The row's fields this script reads, in one call (every reservation runs it).
local f = redis.call('HMGET', rowKey, 'creditsReserved', 'waitingBudget', 'status', 'seq')
local status = f[3]
local held = num(f[1])
local delta = tonumber(ARGV[2]) - held
local deltaText = ARGV[2]
if held ~= 0 then deltaText = tostring(delta) end
local waiting = f[2] == '1'
-- A queued row already holding its reservation still asks (no credit more): a budget lowered
-- below what the batch has spent and holds stops this create too, and the reservation goes back.
-- (A row that left queued keeps the old answer: its submit job finds it and gives back itself.)
local room = budget_room(batchKey)
local over = (delta > 0 and not fits(room, delta))
  or (delta <= 0 and held ~= 0 and not fits(room, 0) and status == 'queued')
if over then
  -- Only a queued row waits (and is parked: transition.lua takes it out when it leaves queued);
  -- a row cancelled meanwhile is refused without being counted as waiting, which nothing would undo.
  if status ~= 'queued' then return 'over-budget' end
  if held ~= 0 then release() end
  if not waiting then
    redis.call('HSET', rowKey, 'waitingBudget', '1', 'updatedAt', now)
    redis.call('HINCRBY', batchKey, 'waitingBudget', 1)
    redis.call('HSET', batchKey, 'updatedAt', now)
  end
  -- Always (idempotent): a row marked waiting before rows were parked is parked on its next run.
  redis.call('ZADD', KEYS[3], num(f[4]), rowId)
  -- What waking it costs (it holds nothing now): the wake's bound comes down to it.
  parked_lower(batchKey, tonumber(ARGV[2]))
  return 'over-budget'
end
if delta > 0 then
  redis.call('HINCRBYFLOAT', rowKey, 'creditsReserved', deltaText)
  redis.call('HINCRBYFLOAT', batchKey, 'creditsReserved', deltaText)
  if status ~= 'queued' then
    redis.call('SADD', KEYS[4], rowId)
    redis.call('PEXPIRE', KEYS[4], RESERVED_ENDED_TTL_MS)
  end
end
if waiting then
  redis.call('HDEL', rowKey, 'waitingBudget')
  redis.call('HINCRBY', batchKey, 'waitingBudget', -1)
  redis.call('ZREM', KEYS[3], rowId)
end
touch(now)
if room ~= nil then return 'reserved' end
return 'no-budget'
