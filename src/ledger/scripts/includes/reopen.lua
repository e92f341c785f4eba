--[[
  Reopening a finished batch (a retried row: transition.lua; an appended row: add-rows.lua).
  Included by their `--- @include` line; expects the batch's side keys (batchSideKeys in
  batch-keys.ts: order, unarchived, the five state indexes, columns, parked, progress) at
  KEYS[sideFirst..sideFirst + 9].

  The batch hash and every side key lose their expiry here, at once (a handful of keys); the rows
  (up to a million) are the caller's walk (housekeeping.ts), which needs to know how soon the
  first key would have expired: the rows expire then too.
]]
local SIDE_KEYS = 10

-- Removes finishedAt and the expiry of the batch hash, of every side key (from KEYS[sideFirst])
-- and of `extraKeys` (the row hash and body the script holds, or nil). Returns the ms left before the soonest expiry removed or planned
-- (the housekeeping walk's `hkAt`), -1 when there was none.
local function reopen_batch(batchKey, extraKeys, now, sideFirst)
  local left = -1
  local function sooner(ms)
    if ms >= 0 and (left < 0 or ms < left) then left = ms end
  end
  local hk = redis.call('HMGET', batchKey, 'hkMode', 'hkAt')
  if hk[1] == 'expire' and tonumber(hk[2]) then sooner(math.max(0, tonumber(hk[2]) - now)) end
  local keys = { batchKey }
  for i = sideFirst, sideFirst + SIDE_KEYS - 1 do keys[#keys + 1] = KEYS[i] end
  for _, key in ipairs(extraKeys or {}) do keys[#keys + 1] = key end
  for _, key in ipairs(keys) do
    sooner(redis.call('PTTL', key))
    redis.call('PERSIST', key)
  end
  redis.call('HDEL', batchKey, 'finishedAt')
  return left
end
