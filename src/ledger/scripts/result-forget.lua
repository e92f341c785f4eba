--[[
  Removes a result index entry, but only while it is still the one the caller found unusable: an
  entry another worker wrote meanwhile (a fresh archive of the same request) stays.

    Input:
      KEYS[1] the entry (a STRING; its own hash tag)
      ARGV[1] now: caller's clock (unused), ARGV[2] the entry's value as the caller read it

    Output:
      1 removed, 0 not there or changed
]]
if redis.call('GET', KEYS[1]) == ARGV[2] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
