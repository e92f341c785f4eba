--[[
  Settles a task's cost: includes/settle-task.lua.

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
--- @include "includes/settle-task.lua"
if row_missing() then return { 'missing', 0 } end
if settle_task(ARGV[3], ARGV[2], KEYS[3]) == 'already-settled' then return { 'already-settled', 0 } end
return { 'settled', redis.call('ZCARD', KEYS[4]) }
