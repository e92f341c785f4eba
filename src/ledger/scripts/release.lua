--[[
  Drops the row's reservation without spending (a submit that definitely created nothing).
  Naturally idempotent.

    Input:
      KEYS[1] batch hash, KEYS[2] row hash, KEYS[3] the batch's parked zset (parked.ts)
      ARGV[1] now: caller's clock, epoch ms ('' = Redis TIME)
      ARGV[2] '1': only from a row that has ended (cancelled or failed; the reconciler's repair,
        reconcile-money.ts: a row `retry` moved back to queued keeps what it holds) and whose
        current task, if it has one, is settled or counted uncertain: a reservation held for a
        recorded task that has not settled is that task's (it may still finish and be charged:
        `retry` polls it again), never given back here. '' = any row

    Output:
      {the credits released, as a string ('0' when none), or 'missing'; rows parked in the batch
       now (ZCARD, 0 when nothing was released): the caller wakes them only when there are any}
]]
--- @include "includes/tasks.lua"
--- @include "includes/row-money.lua"
if row_missing() then return { 'missing', 0 } end
if ARGV[2] == '1' then
  local status = redis.call('HGET', rowKey, 'status')
  if status ~= 'cancelled' and status ~= 'failed' then return { '0', 0 } end
  local task = current_task(rowKey)
  if task ~= '' and not task_accounted(task) then return { '0', 0 } end
end
local released = release()
if released == '0' then return { released, 0 } end
touch(now_ms())
return { released, redis.call('ZCARD', KEYS[3]) }
