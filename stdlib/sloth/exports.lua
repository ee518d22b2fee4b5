--- `export(table)`: values a pipeline publishes; `run --return` prints them.
local M = {}

--- Everything exported so far, merged (later keys win).
M.values = {}

---@param values table
function M.add(values)
  if type(values) ~= "table" then
    error("export: expected table, got " .. type(values), 3)
  end
  for k, v in pairs(values) do
    M.values[k] = v
  end
end

return M
