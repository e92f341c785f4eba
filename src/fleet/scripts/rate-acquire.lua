--[[
  Takes a slot of a sliding window if it has one: one atomic step over a sorted set of
  admissions scored by the script clock (microseconds).

  An entry admitted at t counts in (t - window, t]: it leaves when now >= t + window, so any
  half-open window [a, a + window) holds at most `limit` admissions.

    Input:
      KEYS[1] window zset
      KEYS[2] (optional) config hash {limit, windowMs}, the fleet's shared rate
      KEYS[3], KEYS[4] (optional, with KEYS[2]) the key's pause hash and its account's backoff
              hash: read at the admission, so the gate a create checks is the one in force when
              its slot was taken (read-gate.lua's answer, in the same round trip)
      ARGV[1] now: caller's clock, epoch ms ('' = Redis TIME)
      ARGV[2] limit, ARGV[3] windowMs (used when there is no config hash, or it is empty)
      ARGV[4] a member unique to this admission
      ARGV[5] margin: fraction of the window in force, ARGV[6] its floor in ms, ARGV[7] its
              cap in ms (a fixed margin: fraction 0, floor = cap); added to the window

    Output:
      {1, nowUs}              admitted
      {1, nowUs, pause HGETALL, backoff ms left, 1 if a backoff record exists else 0}
                              admitted, with KEYS[3] and KEYS[4]
      {0, nowUs, retryInMs}   refused: no slot frees before retryInMs
]]
--- @include "includes/window.lua"
local limit, windowMs = window_in_force(KEYS[2], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[5], ARGV[6], ARGV[7])
local now = now_us()
local windowUs = windowMs * 1000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - windowUs)
local count = redis.call('ZCARD', KEYS[1])
if count < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[1], windowMs)
  if KEYS[4] then
    local untilMs = tonumber(redis.call('HGET', KEYS[4], 'until'))
    local left = math.max(0, (untilMs or 0) - math.floor(now / 1000))
    return {1, now, redis.call('HGETALL', KEYS[3]), left, untilMs and 1 or 0}
  end
  return {1, now}
end
-- After a limit was lowered more than one entry may have to leave: the one that frees a slot
-- is at index count - limit (0-based, oldest first).
local entry = redis.call('ZRANGE', KEYS[1], count - limit, count - limit, 'WITHSCORES')
local retryUs = tonumber(entry[2]) + windowUs - now
return {0, now, math.max(1, math.ceil(retryUs / 1000))}
