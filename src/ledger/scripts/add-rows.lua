--[[
  Records a chunk of rows in one step, creating the batch if needed. A row already recorded is
  left as it is. A batch `purge` has marked is refused whole (error `PURGING`), nothing written.

    Input:
      KEYS[1] batch hash (the deployment's batch index, in another slot, is the caller's)
      KEYS[2..11] the batch's side keys (batch-keys.ts): KEYS[2] order zset, KEYS[3] unarchived
        zset, KEYS[4] the `queued` state index (rowId -> ms it entered the state), KEYS[5..8] the
        other state indexes, KEYS[9] columns zset, KEYS[10] parked zset, KEYS[11] progress hash
      KEYS[12..] per row, its hash then its body string (keys.ts `row`, `body`)
      ARGV[1] now: caller's clock, epoch ms ('' = Redis TIME)
      ARGV[2] batch name, ARGV[3] file (''), ARGV[4] budget ('' = leave as is)
      ARGV[5] '1' marks the batch `noReuse` (enqueue --no-reuse; '' = leave as is)
      ARGV[6] submit window, rows ('' = none): a batch CREATED by this call is window-managed
        (feed.lua gives its rows submit jobs a window at a time: `fedSeq`, `held`); a batch that
        already is one takes the new size; a batch created without it (or by an earlier version)
        never becomes one, and its rows get their jobs from the caller as before
      ARGV[7] the batch's submit priority, kept for the jobs feed.lua's callers add ('' = leave):
        written when the batch keeps none (its creation), or over a kept one when ARGV[8] is '1'
        (enqueue --priority given; a healing enqueue without it leaves the batch's priority)
      ARGV[9] '1': the batch must exist already (an enqueue's later chunks: one deleted meanwhile,
        a purge, is not made again without the budget and settings its first chunk gave; error
        `GONE`); '' creates it when missing
      ARGV[10..] per row, 4 values: id, line, body (row-body.ts: prompt, params, metadata),
        estimatedCredits

    Output:
      {reopened (0|1), ms left before the expiry the reopen removed (-1: none; see
       includes/reopen.lua), then per row: 0 new (its job is the caller's), 1 duplicate still
       queued and due a job (re-add it), 2 duplicate (moved on, or held: no job due now),
       3 new and held (window-managed batch: feed.lua gives it its job)}
]]
--- @include "includes/reopen.lua"
local now = now_ms()
local batchKey, orderKey = KEYS[1], KEYS[2]
-- A batch `purge` marked (running, or cut short) has rows partly deleted that its counters still
-- count: nothing is added until the purge, run again, has deleted it (a new batch then).
if redis.call('HEXISTS', batchKey, 'purging') == 1 then return redis.error_reply('PURGING') end
if ARGV[9] == '1' and redis.call('EXISTS', batchKey) == 0 then return redis.error_reply('GONE') end
if redis.call('EXISTS', batchKey) == 0 then
  redis.call('HSET', batchKey, 'createdAt', now, 'updatedAt', now, 'nextSeq', 0,
    'total', 0, 'queued', 0, 'submitted', 0, 'generating', 0, 'archiving', 0, 'archived', 0,
    'failed', 0, 'cancelled', 0, 'creditsEstimated', 0, 'creditsReserved', 0, 'creditsSpent', 0,
    'uncertain', 0, 'resubmits', 0, 'waitingBudget', 0, 'repaired', 0, 'stateIndexed', 1,
    -- No row parked yet: each park lowers this bound (includes/parked-min.lua).
    'parkedMin', 'none')
  if ARGV[6] ~= '' then redis.call('HSET', batchKey, 'fedSeq', 0, 'held', 0) end
end
-- Rows with seq >= fedSeq that are queued are held: no job until feed.lua feeds them.
local fedSeq = redis.call('HGET', batchKey, 'fedSeq')
if fedSeq then
  fedSeq = tonumber(fedSeq)
  if ARGV[6] ~= '' then redis.call('HSET', batchKey, 'submitWindow', ARGV[6]) end
  if ARGV[7] ~= '' then
    if ARGV[8] == '1' then
      redis.call('HSET', batchKey, 'priority', ARGV[7])
    else
      redis.call('HSETNX', batchKey, 'priority', ARGV[7])
    end
  end
end
if ARGV[3] ~= '' then redis.call('HSETNX', batchKey, 'file', ARGV[3]) end
if ARGV[4] ~= '' then redis.call('HSET', batchKey, 'budget', ARGV[4]) end
if ARGV[5] == '1' then redis.call('HSET', batchKey, 'noReuse', '1') end
-- Values per row, in the order of encodeNewRow (codec.ts); keys per row: hash, body.
local FIELDS_PER_ROW = 4
local KEYS_PER_ROW = 2
local seq = num(redis.call('HGET', batchKey, 'nextSeq'))
-- Rows below the freeze cursor may live in a frozen page (freeze.lua), with no keys of their own:
-- such a row is found by its place in the order zset, and is a duplicate like any other. So is a
-- row of a batch an expiry walk went over (`hkMode`) whose keys expired while the batch's did not
-- (a walk cut short and never resumed): recorded once, it is never queued (and paid for) again.
local frozenTo = tonumber(redis.call('HGET', batchKey, 'frozenTo') or '0')
local walked = redis.call('HEXISTS', batchKey, 'hkMode') == 1
local added, estimated, cheapest = 0, 0, nil
local FIRST_ROW = 12
local out = { 0, -1 }
for i = FIRST_ROW, #KEYS, KEYS_PER_ROW do
  local rowKey, bodyKey = KEYS[i], KEYS[i + 1]
  local base = 9 + (i - FIRST_ROW) / KEYS_PER_ROW * FIELDS_PER_ROW
  local status = redis.call('HGET', rowKey, 'status')
  if not status and (frozenTo > 0 or walked) then
    local at = redis.call('ZSCORE', orderKey, ARGV[base + 1])
    if at and (walked or tonumber(at) < frozenTo) then status = 'gone' end
  end
  if status then
    local held = fedSeq and status == 'queued' and num(redis.call('HGET', rowKey, 'seq')) >= fedSeq
    if status == 'queued' and not held then out[#out + 1] = 1 else out[#out + 1] = 2 end
  else
    local id = ARGV[base + 1]
    -- Only short values in the hash (it stays a listpack); the id is its key's, the rest the body's.
    redis.call('HSET', rowKey, 'line', ARGV[base + 2], 'seq', seq, 'estimatedCredits', ARGV[base + 4],
      'status', 'queued', 'createdAt', now, 'updatedAt', now)
    redis.call('SET', bodyKey, ARGV[base + 3])
    redis.call('ZADD', orderKey, seq, id)
    redis.call('ZADD', KEYS[4], now, id)
    seq = seq + 1
    added = added + 1
    estimated = estimated + tonumber(ARGV[base + 4])
    if not cheapest or tonumber(ARGV[base + 4]) < cheapest then cheapest = tonumber(ARGV[base + 4]) end
    if fedSeq then out[#out + 1] = 3 else out[#out + 1] = 0 end
  end
end

if added > 0 then
  redis.call('HINCRBY', batchKey, 'total', added)
  redis.call('HINCRBY', batchKey, 'queued', added)
  if fedSeq then redis.call('HINCRBY', batchKey, 'held', added) end
  redis.call('HINCRBYFLOAT', batchKey, 'creditsEstimated', tostring(estimated))
  redis.call('HSET', batchKey, 'nextSeq', seq, 'updatedAt', now)
  -- The batch's cheapest row (feed.lua: while rows wait for budget, whether a held row may still fit).
  local known = tonumber(redis.call('HGET', batchKey, 'minEstimate') or '')
  if not known or cheapest < known then redis.call('HSET', batchKey, 'minEstimate', tostring(cheapest)) end
  -- Rows appended to a batch `cancel` ran on are meant to run: its mark (no resubmits) goes.
  redis.call('HDEL', batchKey, 'cancelledAt')
  -- An appended row reopens a finished batch: it must not expire under the new rows. Its hash
  -- and side keys stop expiring here; row keys are made persistent by the caller, page by page
  -- (too many for one script), at once when the expiry is near.
  if redis.call('HEXISTS', batchKey, 'finishedAt') == 1 then
    out[2] = reopen_batch(batchKey, nil, now, 2)
    out[1] = 1
  end
end
return out
