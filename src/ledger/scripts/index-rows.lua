--[[
  Puts a page of existing rows into their state indexes, for a batch created before the indexes
  existed. Safe while workers run: a row already indexed keeps its score (NX), and a transition
  after this page moves the row between indexes as usual. The caller marks the batch indexed
  (`stateIndexed`) once every page is done.

    Input:
      KEYS[1..5] state indexes of queued, submitted, generating, archiving, failed
      KEYS[6..] one row hash per row
      ARGV[1] now: caller's clock, epoch ms ('' = Redis TIME)
      ARGV[2..] the row ids, in the order of KEYS[6..]

    Output:
      the number of rows added to an index
]]
local INDEX = { queued = KEYS[1], submitted = KEYS[2], generating = KEYS[3], archiving = KEYS[4],
  failed = KEYS[5] }
local added = 0
for i = 6, #KEYS do
  local row = redis.call('HMGET', KEYS[i], 'status', 'updatedAt')
  local key = row[1] and INDEX[row[1]]
  if key then
    -- The row's last change stands in for when it entered its state: old enough for the reconciler.
    added = added + redis.call('ZADD', key, 'NX', num(row[2]), ARGV[i - 4])
  end
end
return added
