--[[
  Sets the fleet's shared rate of one limiter.

    Input:
      KEYS[1] config hash
      ARGV[1] now: caller's clock ('' = Redis TIME); unused
      ARGV[2] limit, ARGV[3] windowMs

    Output:
      the previous HGETALL (empty the first time)
]]
local previous = redis.call('HGETALL', KEYS[1])
redis.call('HSET', KEYS[1], 'limit', ARGV[2], 'windowMs', ARGV[3])
return previous
