--[[
  Frees in-flight slots: each job's slot under this version's name, or, only when that is not
  held, under the name versions before deployments named slots gave it (the job key alone: the
  slot of a task submitted before an upgrade). A job of this deployment never frees another
  deployment's slot of the same job key while its own is there.

    Input:
      KEYS[1] in-flight zset
      ARGV[1] now: caller's clock, epoch ms ('' = Redis TIME; unused)
      ARGV[2k], ARGV[2k+1] (k >= 1): a slot's name and its name as earlier versions wrote it

    Output:
      the number of slots freed
]]
local freed = 0
for i = 2, #ARGV, 2 do
  if redis.call('ZREM', KEYS[1], ARGV[i]) == 1 then
    freed = freed + 1
  else
    freed = freed + redis.call('ZREM', KEYS[1], ARGV[i + 1])
  end
end
return freed
