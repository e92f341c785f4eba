--[[
  One step of a batch's housekeeping: sets (or removes) the expiry of a page of its rows and
  records how far the walk got, in one atomic step, and only while the batch is still in the
  state the step was planned for, so a batch reopened or finished again meanwhile never gets a
  page with the wrong expiry (its next step starts the new walk from the first row). The last
  step also does the batch's own keys, the batch hash last.

    Input:
      KEYS[1] batch hash, KEYS[2..(1 + ARGV[7])] the batch's other keys (zsets)
      KEYS[...] the page's rows: each row's hash and its body string (keys.ts `body`), which
        get the same expiry in the same step (a body never outlives nor predeceases its row),
        then the frozen page keys (keys.ts `frozen`) of the page's seqs: the same op, as a
        frozen row's only key; all the keys after the batch's are treated alike
      ARGV[1] now: caller's clock, epoch ms ('' = Redis TIME; unused)
      ARGV[2] mode: 'expire' | 'persist'
      ARGV[3] expire at, epoch ms ('' when persisting)
      ARGV[4] the batch's finishedAt the step was planned for ('' = not finished)
      ARGV[5] cursor after this page: the page's last seq ('done' for the last page)
      ARGV[6] rows done after this page
      ARGV[7] how many batch keys follow KEYS[1]

    Output:
      1 applied; 0 the batch is gone or its state changed (nothing applied)
]]
local batchKey = KEYS[1]
local mode, at, planned = ARGV[2], ARGV[3], ARGV[4]
if redis.call('EXISTS', batchKey) == 0 then return 0 end
local finishedAt = redis.call('HGET', batchKey, 'finishedAt') or ''
if finishedAt ~= planned then return 0 end

local function apply(key)
  if mode == 'expire' then redis.call('PEXPIREAT', key, at) else redis.call('PERSIST', key) end
end

local batchKeys = tonumber(ARGV[7])
for i = 2 + batchKeys, #KEYS do apply(KEYS[i]) end
redis.call('HSET', batchKey, 'hkMode', mode, 'hkAt', at, 'hkCursor', ARGV[5], 'hkDone', ARGV[6])
if ARGV[5] == 'done' then
  for i = 2, 1 + batchKeys do apply(KEYS[i]) end
  apply(batchKey)
end
return 1
