--[[
  Freezes one page of a batch's rows (frozen.ts): writes the page's value, deletes the row and
  body keys of the rows it holds, and moves the batch's freeze cursor past the page, in one step,
  and only if nothing changed since the caller read them: the cursor is where the caller found it,
  the page is not written yet, and each row is still `archived` with the `updatedAt` the caller
  compressed. Anything else: nothing is applied (the next sweep reads again).

  The page takes the longest TTL of the rows it replaces (none if none has one; 0 ms left: gone
  with them): a batch's expiry
  walk (housekeeping-step.lua) also sets or removes the TTL of the pages of the rows it passes, so
  a page frozen while the walk is halfway through it is set by the walk's next step.

    Input:
      KEYS[1] batch hash, KEYS[2] the page's key (keys.frozen)
      KEYS[3..] per frozen row, its hash then its body string
      ARGV[1] now: caller's clock (unused)
      ARGV[2] the cursor (`frozenTo`) the caller read ('' = none yet), ARGV[3] the cursor after
        this page, ARGV[4] the page's value ('' when no row of the page is frozen: the cursor
        only moves)
      ARGV[5..] per frozen row: its updatedAt as read

    Output:
      1 applied; 0 not (the batch is gone, or it or a row changed)
]]
local batchKey, pageKey = KEYS[1], KEYS[2]
if redis.call('EXISTS', batchKey) == 0 then return 0 end
if (redis.call('HGET', batchKey, 'frozenTo') or '') ~= ARGV[2] then return 0 end
local rows = (#KEYS - 2) / 2
if rows > 0 and redis.call('EXISTS', pageKey) == 1 then return 0 end
local ttl = -1
for r = 1, rows do
  local rowKey = KEYS[1 + 2 * r]
  local state = redis.call('HMGET', rowKey, 'status', 'updatedAt')
  if state[1] ~= 'archived' or state[2] ~= ARGV[4 + r] then return 0 end
  local left = redis.call('PTTL', rowKey)
  if left > ttl then ttl = left end
end
if rows > 0 then
  redis.call('SET', pageKey, ARGV[4])
  if ttl >= 0 then redis.call('PEXPIRE', pageKey, ttl) end
  for i = 3, #KEYS do redis.call('DEL', KEYS[i]) end
  redis.call('HINCRBY', batchKey, 'frozen', rows)
end
redis.call('HSET', batchKey, 'frozenTo', ARGV[3])
return 1
