--[[
  A worker holds one API key for a while: the key's window mapping (which account's rate window
  it counts in) is checked and refreshed, and the worker is listed among the deployment's holders
  of the key for each stage it runs that needs a task's own key. The keys are the key's own (one
  hash tag).

    Input:
      KEYS[1] STRING the key's window mapping ("own" or "account:<name>")
      KEYS[2] ZSET   the deployment's holders of the key that poll: worker id -> lease end (ms)
      KEYS[3] ZSET   the deployment's holders of the key that archive: worker id -> lease end (ms)
      ARGV[1] now: caller's clock, epoch ms ('' = Redis TIME)
      ARGV[2] this worker's mapping of the key
      ARGV[3] ttl (ms) of the mapping and of this worker's lease
      ARGV[4] this worker's id
      ARGV[5] '1': list it among the holders that poll (it runs the poll stage); '': not
      ARGV[6] '1': list it among the holders that archive (it runs the archive stage); '': not

    Output:
      false when held (mapping written or the same), else the stored mapping, which differs:
      the worker is not listed as a holder and the mapping is left as it is
]]
local now = now_ms()
local ttl = tonumber(ARGV[3])
local stored = redis.call('GET', KEYS[1])
if stored and stored ~= ARGV[2] then return stored end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
for i, holders in ipairs({ KEYS[2], KEYS[3] }) do
  if ARGV[4 + i] == '1' then
    redis.call('ZREMRANGEBYSCORE', holders, '-inf', now)
    redis.call('ZADD', holders, now + ttl, ARGV[4])
    redis.call('PEXPIRE', holders, ttl)
  end
end
return false
