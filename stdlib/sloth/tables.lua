--- Small helpers for plain Lua tables.
local M = {}

--- The keys of `t`, sorted (by their string form), so iteration is deterministic.
---@param t table
---@return any[]
function M.sorted_keys(t)
  local keys = {}
  for k in pairs(t) do
    keys[#keys + 1] = k
  end
  table.sort(keys, function(a, b)
    return tostring(a) < tostring(b)
  end)
  return keys
end

--- Whether `v` is a list (keys 1..n) of strings; an empty table is one.
function M.is_list_of_strings(v)
  if type(v) ~= "table" then
    return false
  end
  for k, item in pairs(v) do
    if math.type(k) ~= "integer" or type(item) ~= "string" then
      return false
    end
  end
  return true
end

return M
