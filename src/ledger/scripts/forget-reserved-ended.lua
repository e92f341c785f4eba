--[[
  Takes out of a batch's reserved-ended set (keys.ts `reservedEnded`) the rows that hold no
  reservation any more (given back, settled, kept as uncertain) or are gone (purged, frozen):
  checked here, so a row that reserves again between the caller's read and this call stays in.

    Input:
      KEYS[1] the reserved-ended set, KEYS[2..] row hashes
      ARGV[1] now: caller's clock, epoch ms ('' = Redis TIME; unused)
      ARGV[2..] row ids, in KEYS[2..] order

    Output:
      the number of rows taken out
]]
local removed = 0
for i = 2, #ARGV do
  local held = redis.call('HGET', KEYS[i], 'creditsReserved')
  if not held or num(held) == 0 then
    removed = removed + redis.call('SREM', KEYS[1], ARGV[i])
  end
end
return removed
