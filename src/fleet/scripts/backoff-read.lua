--[[
  Reads the account's backoff with the script clock, so the caller can tell what is left.

    Input:
      KEYS[1] backoff hash
      ARGV[1] now: caller's clock, epoch ms ('' = Redis TIME)

    Output:
      {kind or nil, consecutive, until (ms), now (ms)}
]]
local h = redis.call('HMGET', KEYS[1], 'kind', 'consecutive', 'until')
return {h[1], tonumber(h[2]) or 0, tonumber(h[3]) or 0, now_ms()}
