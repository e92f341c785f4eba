--[[
  Drops stale in-flight slots and counts the rest.

    Input:
      KEYS[1] in-flight zset
      ARGV[1] now: caller's clock, epoch ms ('' = Redis TIME)
      ARGV[2] staleAfterMs

    Output:
      the number of slots held
]]
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms() - tonumber(ARGV[2]))
return redis.call('ZCARD', KEYS[1])
