--[[
  Takes or renews a fleet-wide lease: one holder at a time, until it lapses.

    Input:
      KEYS[1] lease key
      ARGV[1] now: caller's clock, epoch ms ('' = Redis TIME; unused, kept for the runner's layout)
      ARGV[2] owner, ARGV[3] ttl ms

    Output:
      1 when `owner` holds the lease now (taken or renewed), 0 when another holder has it
]]
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
