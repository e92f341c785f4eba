--[[
  A create leaves now, after its admission: the admission is moved to now on the script's clock
  (the window's), since the API counts the create when it arrives. Later admissions then keep a
  window's distance from when it really left, however long the worker took (checks between slot
  and send, a stalled event loop, a Redis outage it waited through: the move is made after it).
  Only ever later; an admission already gone from the window is added again, now: the create
  counts from now whatever happened to its entry.

    Input:
      KEYS[1] window zset (rate-acquire.lua's)
      KEYS[2] (optional) config hash {limit, windowMs}, the fleet's shared rate
      ARGV[1] the caller's clock (prelude), ARGV[2] the admission's member,
      ARGV[3] windowMs (used without a config hash), ARGV[4] the most margin the window may add (ms)

    Output: 1 moved or added, 0 already at now or later
]]
local now = now_us()
local score = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[2]))
if score and score >= now then return 0 end
redis.call('ZADD', KEYS[1], now, ARGV[2])
local windowMs = tonumber(ARGV[3])
if KEYS[2] then windowMs = tonumber(redis.call('HGET', KEYS[2], 'windowMs')) or windowMs end
-- The key outlives its latest entry by a window and its margin: this entry is now the latest.
local holdMs = windowMs + (tonumber(ARGV[4]) or 0)
if redis.call('PTTL', KEYS[1]) < holdMs then redis.call('PEXPIRE', KEYS[1], holdMs) end
return 1
