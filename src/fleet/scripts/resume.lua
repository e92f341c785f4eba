--[[
  Clears the account's pause: any pause, or only one of the given kind (so a probe that
  succeeds cannot lift a pause an operator set meanwhile).

    Input:
      KEYS[1] pause hash
      ARGV[1] now: caller's clock ('' = Redis TIME); unused
      ARGV[2] kind, or '' for any

    Output:
      1 when a pause was cleared, else 0
]]
if ARGV[2] ~= '' and redis.call('HGET', KEYS[1], 'kind') ~= ARGV[2] then return 0 end
return redis.call('DEL', KEYS[1])
