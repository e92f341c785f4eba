--[[
  A row's tasks (transition.lua, wake.lua). A row written before 2026-12-06 lists them in one
  JSON field, `taskIds`; a newer one has a field per task, `task:<taskId>` = its ordinal from 1
  (codec.ts reads both), so no value of its hash passes 64 bytes.
]]

-- How many tasks the row (KEYS of a row hash) has had.
local function task_count(rowKey)
  local ids = redis.call('HGET', rowKey, 'taskIds')
  if ids and ids ~= '' then return #cjson.decode(ids) end
  local n = 0
  for _, field in ipairs(redis.call('HKEYS', rowKey)) do
    if string.sub(field, 1, 5) == 'task:' then n = n + 1 end
  end
  return n
end
