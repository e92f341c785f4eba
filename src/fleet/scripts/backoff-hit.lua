--[[
  Records a 429 or 455 in the account's backoff.

  A hit while a backoff of the same kind runs belongs to the same burst (every in-flight submit
  meets the same 429) and changes nothing; one after it ended counts as the next in a row. A hit
  of the other kind takes over only if it ends later: a backoff is never shortened.

    Input:
      KEYS[1] backoff hash {kind, consecutive, until}
      ARGV[1] now: caller's clock, epoch ms ('' = Redis TIME)
      ARGV[2] kind
      ARGV[3] forgetAfterMs: how long the count outlives the backoff
      ARGV[4..] delay (ms) of hit 1, 2, ...; the last one repeats

    Output:
      {isNew (0|1), consecutive, until (ms), now (ms), kind in force}
]]
local now = now_ms()
local h = redis.call('HMGET', KEYS[1], 'kind', 'consecutive', 'until')
local n = tonumber(h[2]) or 0
local untilMs = tonumber(h[3]) or 0
local steps = #ARGV - 3
if untilMs > now then
  if h[1] == ARGV[2] or now + tonumber(ARGV[4]) <= untilMs then
    return {0, n, untilMs, now, h[1]}
  end
end
if h[1] ~= ARGV[2] then n = 0 end
n = n + 1
local nextUntil = math.max(untilMs, now + tonumber(ARGV[3 + math.min(n, steps)]))
redis.call('HSET', KEYS[1], 'kind', ARGV[2], 'consecutive', n, 'until', nextUntil)
redis.call('PEXPIRE', KEYS[1], nextUntil - now + tonumber(ARGV[3]))
return {1, n, nextUntil, now, ARGV[2]}
