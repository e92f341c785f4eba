--[[
  A row's tasks (transition.lua, settle.lua, wake.lua). A row written before 2026-12-06 lists
  them in one JSON field, `taskIds`, and names its current one in `taskId`; a newer one has a
  field per task, `task:<taskId>` = its ordinal n from 1, and `task` = the current one's ordinal;
  what is kept per task is then keyed by n: `k:<n>` the key that created it (before:
  `taskKey:<taskId>`), `s:<n>` its settlement (settle.lua; before: `settled:<taskId>`). codec.ts
  reads both, so no value of the hash passes 64 bytes and no task id is stored twice.
]]

-- How many `task:<id>` fields the row has (its tasks, when it has no `taskIds` list).
local function task_field_count(rowKey)
  local n = 0
  for _, field in ipairs(redis.call('HKEYS', rowKey)) do
    if string.sub(field, 1, 5) == 'task:' then n = n + 1 end
  end
  return n
end

-- How many tasks the row has had.
local function task_count(rowKey)
  local ids = redis.call('HGET', rowKey, 'taskIds')
  if ids and ids ~= '' then return #cjson.decode(ids) end
  return task_field_count(rowKey)
end

-- The row's current task id, or '' when it has none.
local function current_task(rowKey)
  local id = redis.call('HGET', rowKey, 'taskId')
  -- An empty taskId is no task, as codec.ts reads it.
  if id and id ~= '' then return id end
  local ordinal = redis.call('HGET', rowKey, 'task')
  if not ordinal then return '' end
  local fields = redis.call('HGETALL', rowKey)
  for i = 1, #fields, 2 do
    if string.sub(fields[i], 1, 5) == 'task:' and fields[i + 1] == ordinal then
      return string.sub(fields[i], 6)
    end
  end
  return ''
end
