--[[
  Keeps a create attempt's reservation as spent-uncertain: the attempt's reply was lost (or its
  worker died with it on the wire, or its task could not be recorded), so KIE may have made and
  charged a task nobody can name. Its credits leave `creditsReserved` for `creditsUncertain` and
  never come back: the budget then bounds what KIE can have charged, not only what was seen.
  Counts one uncertain submit on the row and the batch.

    Input:
      KEYS[1] batch hash, KEYS[2] row hash
      ARGV[1] now: caller's clock, epoch ms ('' = Redis TIME)
      ARGV[2] credits to count when the row holds no reservation (its task used it: '0' for none)
      ARGV[3] the task whose charge is uncertain, when known ('' = none): counted once per task,
              never once it is settled, and taken back out by settle.lua if it is settled after
      ARGV[4] the attempt's lineage (the tasks the row had when it was made; '' = not given): an
              attempt whose task was recorded since (the row has more tasks) is that task's to
              settle, and nothing is counted (a `cancel` that read the row before the record)
      ARGV[5] the attempt's create-on-the-wire mark (when it was made, epoch ms; '' = not given):
              each attempt counted once (`a:<mark>` on the row), whoever counts it (the job's next
              run, `cancel`, the reconciler, a lost reply's own run)

    Output:
      the credits now counted as uncertain, as a string, or 'missing'
]]
--- @include "includes/row-money.lua"
--- @include "includes/tasks.lua"
if row_missing() then return 'missing' end
if ARGV[4] ~= '' and task_count(rowKey) > tonumber(ARGV[4]) then return '0' end
local attempt = nil
if ARGV[5] ~= '' then
  attempt = 'a:' .. ARGV[5]
  if redis.call('HEXISTS', rowKey, attempt) == 1 then return '0' end
end
local guard = nil
if ARGV[3] ~= '' then
  guard = 'uncertain:' .. ARGV[3]
  -- Counted already, or settled (its charge known, in creditsSpent: nothing about it is uncertain,
  -- a `retry` that polls a task KIE has since forgotten, say).
  if task_accounted(ARGV[3]) then return '0' end
end
local kept = release()
if kept == '0' then kept = ARGV[2] end
if num(kept) ~= 0 then
  redis.call('HINCRBYFLOAT', rowKey, 'creditsUncertain', kept)
  redis.call('HINCRBYFLOAT', batchKey, 'creditsUncertain', kept)
end
if guard then redis.call('HSET', rowKey, guard, kept) end
if attempt then redis.call('HSET', rowKey, attempt, '1') end
redis.call('HINCRBY', rowKey, 'uncertain', 1)
redis.call('HINCRBY', batchKey, 'uncertain', 1)
touch(now_ms())
return kept
