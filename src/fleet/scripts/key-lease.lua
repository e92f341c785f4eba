--[[
  A worker holds one API key for a while: the key's window mapping (which account's rate window
  it counts in) is checked and refreshed, and the worker is listed among the deployment's holders
  of the key. Both keys are the key's own (one hash tag).

    Input:
      KEYS[1] STRING the key's window mapping ("own" or "account:<name>")
      KEYS[2] ZSET   the deployment's holders of the key: worker id -> lease end (ms)
      ARGV[1] now: caller's clock, epoch ms ('' = Redis TIME)
      ARGV[2] this worker's mapping of the key
      ARGV[3] ttl (ms) of the mapping and of this worker's lease
      ARGV[4] this worker's id
      ARGV[5] '1': list it among the holders (it runs the poll stage); '': the mapping alone

    Output:
      false when held (mapping written or the same), else the stored mapping, which differs:
      the worker is not listed as a holder and the mapping is left as it is
]]
local now = now_ms()
local ttl = tonumber(ARGV[3])
local stored = redis.call('GET', KEYS[1])
if stored and stored ~= ARGV[2] then return stored end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
if ARGV[5] == '1' then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  redis.call('ZADD', KEYS[2], now + ttl, ARGV[4])
  redis.call('PEXPIRE', KEYS[2], ttl)
end
return false
