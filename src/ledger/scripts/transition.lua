--[[
  Moves one row, atomically with its batch's counters.

  Invariants kept here: the per-status counters sum to `total`; `waitingBudget` marks only
  queued rows, and the parked set holds only queued rows; the unarchived zset holds exactly the
  rows in `archiving`; each state index holds exactly the rows in its state, scored by when they
  entered it; `finishedAt` is set exactly while every row is archived, failed or cancelled.

    Input:
      KEYS[1] batch hash, KEYS[2] row hash
      KEYS[3..12] the batch's side keys (batch-keys.ts): KEYS[3] order zset, KEYS[4] unarchived
        zset, KEYS[5..9] state indexes of queued, submitted, generating, archiving, failed,
        KEYS[10] columns zset, KEYS[11] parked zset (a row leaving `queued` leaves it),
        KEYS[12] progress hash (progress.ts: rows archived per minute)
      KEYS[13] the row's body string (row-body.ts: its images, error and reusedFrom live there;
        a row written before it existed has none and keeps them in its hash)
      KEYS[14] the batch's reserved-ended set (keys.ts `reservedEnded`): a row that ends
        (cancelled, failed) from queued holding a reservation is added, for the reconciler
        (reconcile-money.ts)
      ARGV[1] now: caller's clock, epoch ms ('' = Redis TIME)
      ARGV[2] from (',a,b,' or '' for any), ARGV[3] to ('' = stay)
      ARGV[4] row id, ARGV[5] batch name, ARGV[6] taskId to add to the row's tasks (''), ARGV[7] with it,
        the short hash of the key that created it ('' = none; includes/tasks.lua)
      ARGV[8] '1': the row is returned only when the move is refused ('' = always)
      ARGV[9] the task the row must have as its current one ('' = any): a stale poll or archive
        of an older task is refused like a row in another status
      ARGV[10] credits a task cost, to settle first ('' = none: includes/settle-task.lua), settled
        whether the move is made or refused (the poll's settle and its move to `archiving` in one
        call), ARGV[11] that task ('' = the row's current one)
      ARGV[12] '1': only while the batch carries `cancel`'s mark (`cancelledAt`), refused like a
        row in another status once a `retry` or an append lifted it ('' = whatever the marks)
      ARGV[13..] nSet, field/value pairs, nDel, fields, nIncr, field/delta pairs

    Output:
      {ok (0|1), finished (0|1), reopened (0|1), ms left before the expiry the reopen removed
       (-1: none; see includes/reopen.lua), feed (0|1), settled (0: not asked or the row is
       missing, 1 settled, 2 already settled), rows parked in the batch after a settle (ZCARD,
       else 0), row HGETALL (absent when the row is missing, or after a move when ARGV[8] says
       so), body}
      feed: a row left `queued` of a window-managed batch (add-rows.lua: `fedSeq`) whose
      fed-and-queued rows (queued - held - waitingBudget) fell below half its `submitWindow`
      while rows are held and, when rows wait for budget, the budget has room: the caller feeds
      it (feed.lua, which feeds then only the held rows that fit).
]]
--- @include "includes/reopen.lua"
--- @include "includes/tasks.lua"
--- @include "includes/budget.lua"
--- @include "includes/row-money.lua"
--- @include "includes/settle-task.lua"
local batchKey, rowKey, unarchivedKey, parkedKey, progressKey = KEYS[1], KEYS[2], KEYS[4], KEYS[11], KEYS[12]
local bodyKey = KEYS[13]
local rowId = ARGV[4]
-- The state index key of each indexed state (INDEXED_STATUSES in types.ts, same order).
local INDEX = { queued = KEYS[5], submitted = KEYS[6], generating = KEYS[7], archiving = KEYS[8],
  failed = KEYS[9] }
if redis.call('EXISTS', batchKey) == 0 then return { 0, 0, 0, -1, 0, 0, 0 } end
local status = redis.call('HGET', rowKey, 'status')
if not status then return { 0, 0, 0, -1, 0, 0, 0 } end
-- The task's cost first, as its own call did before this move: whatever the move then does.
local settled, parked = 0, 0
if ARGV[10] ~= '' then
  if settle_task(ARGV[11], ARGV[10], progressKey) == 'settled' then
    settled, parked = 1, redis.call('ZCARD', parkedKey)
  else
    settled = 2
  end
end
-- A resubmit (a row in flight moved back to queued: a new create, paid) in a batch `cancel` ran on
-- is refused like a row in another status: the poll read the mark before the cancel set it, and
-- the cancel's walk may have passed the row's place already. The row stays in flight; its next
-- poll (the reconciler gives one back) reads the mark and fails it. `retry` clears the mark.
local resubmitCancelled = ARGV[3] == 'queued' and (status == 'submitted' or status == 'generating')
  and redis.call('HEXISTS', batchKey, 'cancelledAt') == 1
local markLifted = ARGV[12] == '1' and redis.call('HEXISTS', batchKey, 'cancelledAt') == 0
if resubmitCancelled or markLifted or (ARGV[2] ~= '' and not string.find(ARGV[2], ',' .. status .. ',', 1, true))
  or (ARGV[9] ~= '' and current_task(rowKey) ~= ARGV[9]) then
  return { 0, 0, 0, -1, 0, settled, parked, redis.call('HGETALL', rowKey), redis.call('GET', bodyKey) }
end

-- The row's long fields, kept in its body as parts `RS <tag> <value>` after the prompt's part
-- (row-body.ts), so that every value in the hash stays within 64 bytes (a listpack).
local BODY_TAG = { images = 'i', error = 'e', reusedFrom = 'r' }
local RS = '\30'
-- Whether the row has a body (rows written before bodies keep their long fields in the hash):
-- asked only by a move that sets or clears one of those fields, not by every move.
local hasBody = nil
local function has_body()
  if hasBody == nil then hasBody = redis.call('EXISTS', bodyKey) == 1 end
  return hasBody
end
local body, bodyChanged = nil, false
-- Sets (value) or removes (nil) the body's part `tag`.
local function body_put(tag, value)
  if not body then body = redis.call('GET', bodyKey) end
  if value == nil and not string.find(body, RS .. tag, 1, true) then return end
  local out, start = {}, 1
  while true do
    local at = string.find(body, RS, start, true)
    local part = string.sub(body, start, (at or 0) - 1)
    if start == 1 or string.sub(part, 1, 1) ~= tag then out[#out + 1] = part end
    if not at then break end
    start = at + 1
  end
  if value ~= nil then out[#out + 1] = tag .. (string.gsub(value, RS, ' ')) end
  body = table.concat(out, RS)
  bodyChanged = true
end

local now = now_ms()
local to = ARGV[3]
local changed = to ~= '' and to ~= status
if changed then
  redis.call('HINCRBY', batchKey, status, -1)
  redis.call('HINCRBY', batchKey, to, 1)
  redis.call('HSET', rowKey, 'status', to)
  if status == 'archiving' then redis.call('ZREM', unarchivedKey, rowId) end
  if INDEX[status] then redis.call('ZREM', INDEX[status], rowId) end
  if INDEX[to] then redis.call('ZADD', INDEX[to], now, rowId) end
  if redis.call('HGET', rowKey, 'waitingBudget') == '1' and to ~= 'queued' then
    redis.call('HDEL', rowKey, 'waitingBudget')
    redis.call('HINCRBY', batchKey, 'waitingBudget', -1)
  end
  if status == 'queued' then redis.call('ZREM', parkedKey, rowId) end
  -- A row that ends from queued holding a reservation (its next attempt's, no task recorded for
  -- it): its caller gives it back (or keeps it as uncertain) in its next step; a crash before that
  -- step would keep it from the budget for good, so the row is noted for the reconciler, which
  -- gives back what nothing else will. A row ending from submitted or generating holds its task's
  -- reservation until the task settles (it may still be charged): not noted.
  if status == 'queued' and (to == 'cancelled' or to == 'failed')
    and num(redis.call('HGET', rowKey, 'creditsReserved')) ~= 0 then
    redis.call('SADD', KEYS[14], rowId)
    redis.call('PEXPIRE', KEYS[14], RESERVED_ENDED_TTL_MS)
  end
end

-- A window-managed batch counts its held rows (queued, seq >= fedSeq: no job until feed.lua
-- feeds them) exactly: a held row leaving queued (a cancel) leaves the count, a row entering
-- queued above fedSeq joins it (feed.lua passes it later, its job is deduplicated by its id).
local feed = 0
local fedSeq = nil
if changed and (status == 'queued' or to == 'queued') then fedSeq = redis.call('HGET', batchKey, 'fedSeq') end
if fedSeq then
  if num(redis.call('HGET', rowKey, 'seq')) >= tonumber(fedSeq) then
    if status == 'queued' then
      redis.call('HINCRBY', batchKey, 'held', -1)
    else
      redis.call('HINCRBY', batchKey, 'held', 1)
    end
  end
  if status == 'queued' then
    local w = redis.call('HMGET', batchKey, 'queued', 'held', 'waitingBudget', 'submitWindow')
    local held, waiting = num(w[2]), num(w[3])
    if held > 0 and (num(w[1]) - held - waiting) * 2 < num(w[4]) then
      -- While rows wait for budget, held rows are fed only when the budget has room (feed.lua;
      -- read below, after this move's credit deltas).
      if waiting == 0 then feed = 1 else feed = -1 end
    end
  end
end

local i = 13
local setsCompletedAt = false
for _ = 1, tonumber(ARGV[i]) do
  local field = ARGV[i + 1]
  if BODY_TAG[field] and has_body() then
    body_put(BODY_TAG[field], ARGV[i + 2])
    redis.call('HDEL', rowKey, field)
  else
    redis.call('HSET', rowKey, field, ARGV[i + 2])
  end
  if field == 'completedAt' then setsCompletedAt = true end
  i = i + 2
end
i = i + 1
for _ = 1, tonumber(ARGV[i]) do
  if BODY_TAG[ARGV[i + 1]] and has_body() then body_put(BODY_TAG[ARGV[i + 1]], nil) end
  redis.call('HDEL', rowKey, ARGV[i + 1])
  i = i + 1
end
if bodyChanged then redis.call('SET', bodyKey, body, 'KEEPTTL') end
i = i + 1
for _ = 1, tonumber(ARGV[i]) do
  local field, delta = ARGV[i + 1], ARGV[i + 2]
  if string.sub(field, 1, 7) == 'credits' then
    redis.call('HINCRBYFLOAT', rowKey, field, delta)
    redis.call('HINCRBYFLOAT', batchKey, field, delta)
  else
    redis.call('HINCRBY', rowKey, field, delta)
    redis.call('HINCRBY', batchKey, field, delta)
  end
  i = i + 2
end
if feed == -1 then
  feed = 0
  -- A batch without a budget never waits; one over it feeds nothing (as feed.lua).
  if fits(budget_room(batchKey), 0) then feed = 1 end
end

local taskId = ARGV[6]
if taskId ~= '' then
  local ids = redis.call('HGET', rowKey, 'taskIds')
  if ids then
    -- A row that has its tasks as one JSON list (written before per-task fields) keeps it.
    local enc = cjson.encode(taskId)
    if ids == '' or ids == '[]' then
      ids = '[' .. enc .. ']'
    elseif not string.find(ids, enc, 1, true) then
      ids = string.sub(ids, 1, -2) .. ',' .. enc .. ']'
    end
    redis.call('HSET', rowKey, 'taskIds', ids, 'taskId', taskId)
    if ARGV[7] ~= '' then redis.call('HSET', rowKey, 'taskKey:' .. taskId, ARGV[7]) end
  else
    -- One field per task, `task:<id>` = its ordinal (a list of two ids would pass 64 bytes),
    -- and `task` = the current one's (includes/tasks.lua).
    local ordinal = redis.call('HGET', rowKey, 'task:' .. taskId)
    if not ordinal then
      ordinal = task_field_count(rowKey) + 1
      redis.call('HSET', rowKey, 'task:' .. taskId, ordinal)
    end
    redis.call('HSET', rowKey, 'task', ordinal)
    redis.call('HDEL', rowKey, 'taskId')
    if ARGV[7] ~= '' then redis.call('HSET', rowKey, 'k:' .. ordinal, ARGV[7]) end
  end
end

-- Per-minute progress for the dashboard's chart, in the same step as the counters it follows. A
-- side key: it expires, persists and is purged with the batch (a row reaching `archived` means
-- the batch was open, so there is no expiry to follow here).
if changed and to == 'archived' then
  redis.call('HINCRBY', progressKey, 'a:' .. math.floor(now / 60000), 1)
end

local current = changed and to or status
if current == 'archiving' and (changed or setsCompletedAt) then
  local completed = redis.call('HGET', rowKey, 'completedAt')
  if not completed then completed = now end
  redis.call('ZADD', unarchivedKey, completed, rowId)
end

local finished, reopened, left = 0, 0, -1
if changed then
  local b = redis.call('HMGET', batchKey, 'total', 'archived', 'failed', 'cancelled', 'finishedAt')
  local total = num(b[1])
  local terminal = num(b[2]) + num(b[3]) + num(b[4])
  if total > 0 and terminal >= total then
    if not b[5] then
      redis.call('HSET', batchKey, 'finishedAt', now)
      finished = 1
    end
  elseif b[5] then
    -- A retried row reopens the batch: stop the expiry of its hash, side keys and this row. The
    -- caller persists the other rows (at once when `left` is short).
    left = reopen_batch(batchKey, { rowKey, bodyKey }, now, 3)
    reopened = 1
  end
end

redis.call('HSET', rowKey, 'updatedAt', now)
redis.call('HSET', batchKey, 'updatedAt', now)
if ARGV[8] == '1' then return { 1, finished, reopened, left, feed, settled, parked } end
return { 1, finished, reopened, left, feed, settled, parked, redis.call('HGETALL', rowKey),
  redis.call('GET', bodyKey) }
