--[[
  Pauses the account's submissions unless a pause of equal or higher rank is set.

    Input:
      KEYS[1] pause hash
      ARGV[1] now: caller's clock, epoch ms ('' = Redis TIME)
      ARGV[2] kind, ARGV[3] rank, ARGV[4] reason
      ARGV[5] probeAfterMs, ARGV[6] probeEveryMs ('' = no probes)
      ARGV[7] optional: the free bytes the pause's probe asks of the store (the archive pause of a
        full disk: archive-gate.ts); '' or absent = none. Written on a pause already in force too:
        a full disk met during another outage holds its probe as well.
      ARGV[8] optional: '1' = the pause's probe writes through a multipart upload too (the archive
        pause of a store refusing the SDK's checksums); '' or absent = no. Written on a pause
        already in force too, as ARGV[7].


    Output:
      {isNew (0|1), HGETALL of the pause in force afterwards}
]]
local floor = ARGV[7]
if floor == '' then floor = nil end
local multipart = ARGV[8] == '1'
local function mark_probe()
  if floor then redis.call('HSET', KEYS[1], 'minFreeBytes', floor) end
  if multipart then redis.call('HSET', KEYS[1], 'probeMultipart', '1') end
end
local rank = redis.call('HGET', KEYS[1], 'rank')
if rank and tonumber(rank) >= tonumber(ARGV[3]) then
  mark_probe()
  return {0, redis.call('HGETALL', KEYS[1])}
end
local now = now_ms()
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'kind', ARGV[2], 'rank', ARGV[3], 'reason', ARGV[4], 'since', now)
if ARGV[6] ~= '' then
  redis.call('HSET', KEYS[1], 'nextProbeAt', now + tonumber(ARGV[5]), 'probeEveryMs', ARGV[6])
end
mark_probe()
return {1, redis.call('HGETALL', KEYS[1])}
