--[[
  A create is about to leave, after its admission: the admission is moved to now on the script's
  clock (the window's), since the API counts the create when it arrives. Later admissions then
  keep a window's distance from when it really left, however long the worker took (checks between
  slot and send, a stalled event loop, a Redis outage it waited through: the move is made after
  it). Only ever later; an admission already gone from the window is added again, now. If the
  window, this create counted now, holds more than the limit (others were admitted while it
  waited through an outage, or the limit was lowered), it must not leave: its admission is
  removed and it waits for a slot again.

    Input:
      KEYS[1] window zset (rate-acquire.lua's)
      KEYS[2] (optional) config hash {limit, windowMs}, the fleet's shared rate
      ARGV[1] the caller's clock (prelude), ARGV[2] the admission's member,
      ARGV[3] limit, ARGV[4] windowMs (used without a config hash),
      ARGV[5..7] the margin's fraction, floor and cap (rate-acquire.lua's ARGV[5..7])

    Output: 1 may leave (moved, or already at now), 0 must not (the window is full: removed)
]]
--- @include "includes/window.lua"
local limit, windowMs = window_in_force(KEYS[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5], ARGV[6], ARGV[7])
local now = now_us()
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - windowMs * 1000)
local score = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[2]))
if not score or score < now then redis.call('ZADD', KEYS[1], now, ARGV[2]) end
if redis.call('ZCARD', KEYS[1]) > limit then
  redis.call('ZREM', KEYS[1], ARGV[2])
  return 0
end
-- The key outlives its latest entry by a window and its margin: this entry may be the latest.
if redis.call('PTTL', KEYS[1]) < windowMs then redis.call('PEXPIRE', KEYS[1], windowMs) end
return 1
