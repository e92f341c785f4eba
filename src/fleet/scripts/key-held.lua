--[[
  Whether some live worker of the deployment holds an API key (its lease not yet ended).

    Input:
      KEYS[1] ZSET the deployment's holders of the key: worker id -> lease end (ms)
      ARGV[1] now: caller's clock, epoch ms ('' = Redis TIME)

    Output:
      the number of live holders
]]
return redis.call('ZCOUNT', KEYS[1], '(' .. now_ms(), '+inf')
