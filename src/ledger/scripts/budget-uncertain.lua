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

    Output:
      the credits now counted as uncertain, as a string, or 'missing'
]]
--- @include "includes/row-money.lua"
if row_missing() then return 'missing' end
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
redis.call('HINCRBY', rowKey, 'uncertain', 1)
redis.call('HINCRBY', batchKey, 'uncertain', 1)
touch(now_ms())
return kept
