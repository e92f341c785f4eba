--[[
  The budget's arithmetic, the one place for every script that asks whether credits fit
  (reserve, wake, feed, transition; `ledger/feed.ts` repeats it for its no-script answer).
  The budget bounds spent + reserved + uncertain: uncertain credits count as spent, since a
  create whose reply was lost may have been charged.
]]

-- Credits may be fractional, and float sums are not exact: every comparison allows this much.
local CREDIT_SLACK = 1e-9

-- The room left under the batch's budget (negative when over it), or nil when it has no budget.
-- `b`: the batch's 'budget', 'creditsSpent', 'creditsReserved', 'creditsUncertain', in that order.
local function room_of(b1, b2, b3, b4)
  if not b1 then return nil end
  return tonumber(b1) - num(b2) - num(b3) - num(b4)
end

local function budget_room(batchKey)
  local b = redis.call('HMGET', batchKey, 'budget', 'creditsSpent', 'creditsReserved', 'creditsUncertain')
  return room_of(b[1], b[2], b[3], b[4])
end

-- Whether `cost` more credits fit in `room` (nil: no budget, everything fits).
local function fits(room, cost)
  return room == nil or cost <= room + CREDIT_SLACK
end
