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

--- Rows of cells (strings) as aligned text: each column as wide as its widest cell, two spaces
--- between columns, the last one not padded; one line per row, no trailing spaces.
---@param rows string[][]
---@return string
function M.columns(rows)
  local widths = {}
  for _, row in ipairs(rows) do
    for i, cell in ipairs(row) do
      widths[i] = math.max(widths[i] or 0, #cell)
    end
  end
  local out = {}
  for _, row in ipairs(rows) do
    local cells = {}
    for i, cell in ipairs(row) do
      cells[i] = i < #row and cell .. string.rep(" ", widths[i] - #cell) or cell
    end
    out[#out + 1] = (table.concat(cells, "  "):gsub("%s+$", ""))
  end
  return table.concat(out, "\n")
end

return M
