--[[
  Takes, renews or releases a fleet-wide lease: one holder at a time, until it lapses or its
  holder lets it go.

    Input:
      KEYS[1] lease key
      ARGV[1] now: caller's clock, epoch ms ('' = Redis TIME; unused, kept for the runner's layout)
      ARGV[2] owner, ARGV[3] ttl ms; 0: release (delete the lease only while `owner` holds it,
              compared and deleted in this one step: a lease that lapsed and went to another
              holder is theirs and stays)

    Output:
      take or renew: 1 when `owner` holds the lease now (taken or renewed), 0 when another holder
      has it; release: 1 when `owner`'s lease was deleted, 0 when it held none
]]
local holder = redis.call('GET', KEYS[1])
if ARGV[3] == '0' then
  if holder == ARGV[2] then
    redis.call('DEL', KEYS[1])
    return 1
  end
  return 0
end
if holder and holder ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
