--- `export(table)`: values a pipeline publishes; `run --return` prints them.
local M = {}

--- Everything exported so far, merged (later keys win).
M.values = {}

--- What was exported since `watch()`: an agent sends a task's own exports back to its
--- master (not those of reading the pipeline, which the master made too).
local watched

---@param values table
function M.add(values)
  if type(values) ~= "table" then
    error("export: expected table, got " .. type(values), 3)
  end
  for k, v in pairs(values) do
    M.values[k] = v
    if watched then
      watched[k] = v
    end
  end
end

--- Starts noting what is exported.
function M.watch()
  watched = {}
end

--- What was exported since `watch()`, which stops noting.
---@return table
function M.watched()
  local values = watched or {}
  watched = nil
  return values
end

return M
