import { LUA_PRELUDE, LuaScript } from "../lua-script.js";

/*
 * Money. A row holds at most one reservation at a time (`creditsReserved` on the row); the batch's
 * `creditsReserved` is the sum over its rows. Spent credits only ever grow, once per task.
 * KEYS for all three: 1 batch hash, 2 row hash. A missing row or batch returns 'missing'.
 */

/**
 * Reserves credits for a row's next submit. Idempotent per row: a row that already holds at least
 * `credits` reserves nothing more (a submit job retried after a crash does not reserve twice).
 * ARGV: 1 now, 2 credits. Returns 'reserved' | 'no-budget' | 'over-budget' | 'missing'.
 */
export const reserveScript = new LuaScript(
  "ledger:reserve",
  `${LUA_PRELUDE}
local batchKey, rowKey = KEYS[1], KEYS[2]
if redis.call('EXISTS', batchKey) == 0 or redis.call('EXISTS', rowKey) == 0 then return 'missing' end
local now = now_ms(ARGV[1])
local budget = redis.call('HGET', batchKey, 'budget')
local held = num(redis.call('HGET', rowKey, 'creditsReserved'))
local delta = tonumber(ARGV[2]) - held
local deltaText = ARGV[2]
if held ~= 0 then deltaText = tostring(delta) end
local waiting = redis.call('HGET', rowKey, 'waitingBudget') == '1'
if delta > 0 and budget then
  local b = redis.call('HMGET', batchKey, 'creditsSpent', 'creditsReserved')
  -- A small tolerance: credits may be fractional, and float sums are not exact.
  if num(b[1]) + num(b[2]) + delta > tonumber(budget) + 1e-9 then
    if not waiting then
      redis.call('HSET', rowKey, 'waitingBudget', '1', 'updatedAt', now)
      redis.call('HINCRBY', batchKey, 'waitingBudget', 1)
      redis.call('HSET', batchKey, 'updatedAt', now)
    end
    return 'over-budget'
  end
end
if delta > 0 then
  redis.call('HINCRBYFLOAT', rowKey, 'creditsReserved', deltaText)
  redis.call('HINCRBYFLOAT', batchKey, 'creditsReserved', deltaText)
end
if waiting then
  redis.call('HDEL', rowKey, 'waitingBudget')
  redis.call('HINCRBY', batchKey, 'waitingBudget', -1)
end
redis.call('HSET', rowKey, 'updatedAt', now)
redis.call('HSET', batchKey, 'updatedAt', now)
if budget then return 'reserved' end
return 'no-budget'
`,
);

/** Moves the row's reservation to spent. Returns the credits released, as a string. */
const RELEASE = `
local function release(batchKey, rowKey)
  local held = redis.call('HGET', rowKey, 'creditsReserved')
  if held and num(held) ~= 0 then
    -- Negate the stored text itself: a round trip through a Lua number may round it.
    local negated = '-' .. held
    if string.sub(held, 1, 1) == '-' then negated = string.sub(held, 2) end
    redis.call('HINCRBYFLOAT', batchKey, 'creditsReserved', negated)
    redis.call('HSET', rowKey, 'creditsReserved', '0')
    return held
  end
  return '0'
end
`;

/**
 * Settles a task's cost: releases the row's reservation and adds `spent`, once per task (the
 * given taskId, else the row's current one, else the row itself), guarded by a `settled:<task>`
 * field on the row, so a retried poll or archive job never counts a task twice.
 * ARGV: 1 now, 2 spent, 3 taskId (''). Returns 'settled' | 'already-settled' | 'missing'.
 */
export const settleScript = new LuaScript(
  "ledger:settle",
  `${LUA_PRELUDE}${RELEASE}
local batchKey, rowKey = KEYS[1], KEYS[2]
if redis.call('EXISTS', batchKey) == 0 or redis.call('EXISTS', rowKey) == 0 then return 'missing' end
local now = now_ms(ARGV[1])
local task = ARGV[3]
if task == '' then task = redis.call('HGET', rowKey, 'taskId') or '' end
local guard = 'settled:' .. task
if redis.call('HEXISTS', rowKey, guard) == 1 then return 'already-settled' end
release(batchKey, rowKey)
redis.call('HINCRBYFLOAT', rowKey, 'creditsSpent', ARGV[2])
redis.call('HINCRBYFLOAT', batchKey, 'creditsSpent', ARGV[2])
redis.call('HSET', rowKey, guard, ARGV[2], 'updatedAt', now)
redis.call('HSET', batchKey, 'updatedAt', now)
return 'settled'
`,
);

/**
 * Drops the row's reservation without spending (a submit that definitely created nothing).
 * Naturally idempotent. ARGV: 1 now. Returns the credits released, as a string, or 'missing'.
 */
export const releaseScript = new LuaScript(
  "ledger:release",
  `${LUA_PRELUDE}${RELEASE}
local batchKey, rowKey = KEYS[1], KEYS[2]
if redis.call('EXISTS', batchKey) == 0 or redis.call('EXISTS', rowKey) == 0 then return 'missing' end
local now = now_ms(ARGV[1])
local released = release(batchKey, rowKey)
if released ~= '0' then
  redis.call('HSET', rowKey, 'updatedAt', now)
  redis.call('HSET', batchKey, 'updatedAt', now)
end
return released
`,
);

/** Sets or clears (ARGV[2] = '') a batch's budget; 0 when the batch does not exist. ARGV: 1 now, 2 budget. */
export const setBudgetScript = new LuaScript(
  "ledger:set-budget",
  `${LUA_PRELUDE}
local batchKey = KEYS[1]
if redis.call('EXISTS', batchKey) == 0 then return 0 end
if ARGV[2] == '' then
  redis.call('HDEL', batchKey, 'budget')
else
  redis.call('HSET', batchKey, 'budget', ARGV[2])
end
redis.call('HSET', batchKey, 'updatedAt', now_ms(ARGV[1]))
return 1
`,
);
