--[[
  A lower bound on what any row of a batch's parked set costs to wake (its `estimatedCredits`
  less what it holds), kept in the batch hash as `parkedMin` ('none': the set is empty; absent:
  unknown, read as 0), so a wake whose room is below it reads no row, and a wake goes on past a
  page of rows that did not fit only while its room may still hold one (wake.lua).
  - Every park lowers it (reserve.lua; feed.lua's misfits): it stays a lower bound.
  - A batch is created with 'none' (add-rows.lua): nothing parked yet.
  - A wake that walks the whole set from its start sets it exactly: its first page writes
    `walkId` (the walk's token, unless another walk's, refreshed by its pages at `walkAt`, is
    under way) and starts its minimum at none (at 0 when a row parked inside the page's span
    since the caller read it: its cost is unknown), each page lowers `walkMin` by the rows it passed, every
    park meanwhile lowers it too, and the walk's last page, if `walkId` is still its own, writes
    `walkMin` to `parkedMin`. Rows leaving the set only raise the true minimum, so a bound that
    misses them is still a bound.
]]

-- A stored cost or 'none' as a number (math.huge for 'none'); nil when absent.
local function parked_cost(v)
  if v == 'none' then return math.huge end
  if v then return tonumber(v) end
  return nil
end

local function parked_cost_text(cost)
  if cost == math.huge then return 'none' end
  return tostring(cost)
end

-- A row costing `cost` parks in the batch: the bound and a running walk's minimum come down to it.
local function parked_lower(batchKey, cost)
  local b = redis.call('HMGET', batchKey, 'parkedMin', 'walkMin')
  local known, walk = parked_cost(b[1]), parked_cost(b[2])
  if known and cost < known then redis.call('HSET', batchKey, 'parkedMin', parked_cost_text(cost)) end
  if walk and cost < walk then redis.call('HSET', batchKey, 'walkMin', parked_cost_text(cost)) end
end
