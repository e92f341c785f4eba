--[[
  Moves an admission of a sliding window later: its request left `lateUs` after the admission
  (a busy event loop, the checks between slot and send), and the API counts it when it arrives.
  Later admissions then keep a window's distance from when it really left. Only ever later, and
  only an admission still in the window: one already expired is not brought back.

    Input:
      KEYS[1] window zset (rate-acquire.lua's)
      ARGV[1] the caller's clock (unused: the move is relative), ARGV[2] the admission's member,
      ARGV[3] lateUs (> 0)

    Output: 1 moved, 0 not in the window (expired, or never admitted)
]]
local score = redis.call('ZSCORE', KEYS[1], ARGV[2])
local late = tonumber(ARGV[3])
if not score or not late or late <= 0 then return 0 end
redis.call('ZADD', KEYS[1], 'XX', tonumber(score) + late, ARGV[2])
-- The key outlives its latest entry by a window: this one now ends `late` later.
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl + math.ceil(late / 1000)) end
return 1
