--[[
  Keeps a batch's metadata column names in order of first appearance: a name not yet known gets
  the next rank. Run by addRows before it records the rows carrying the names, so a column is
  never missing from `results` (at worst, after a crash, a name no row has).

    Input:
      KEYS[1] the batch's columns zset (name -> rank), KEYS[2] batch hash
      ARGV[1] now: caller's clock, epoch ms ('' = Redis TIME; unused)
      ARGV[2] '1': only for a batch that exists (an enqueue's chunk after its first: a batch a
        purge deleted meanwhile gets no stray columns key); '' records them either way
      ARGV[3..] column names, in order of appearance

    Output:
      1 when the batch hash existed before this call, else 0
]]
local existed = redis.call('EXISTS', KEYS[2])
if ARGV[2] == '1' and existed == 0 then return 0 end
for i = 3, #ARGV do
  if not redis.call('ZSCORE', KEYS[1], ARGV[i]) then
    redis.call('ZADD', KEYS[1], redis.call('ZCARD', KEYS[1]), ARGV[i])
  end
end
return existed
