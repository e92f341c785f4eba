--[[
  Drops the row's reservation without spending (a submit that definitely created nothing).
  Naturally idempotent.

    Input:
      KEYS[1] batch hash, KEYS[2] row hash
      ARGV[1] now: caller's clock, epoch ms ('' = Redis TIME)

    Output:
      the credits released, as a string ('0' when none), or 'missing'
]]
--- @include "includes/row-money.lua"
if row_missing() then return 'missing' end
local released = release()
if released ~= '0' then touch(now_ms()) end
return released
