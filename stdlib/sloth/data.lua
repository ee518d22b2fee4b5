--- `data`: JSON helpers existing pipelines use. Each returns `value, err` instead of raising.
local json = require("sloth.json")

local M = {}

---@return string? text, string? err
function M.to_json(value)
  local ok, result = pcall(json.encode, value)
  if not ok then
    return nil, tostring(result)
  end
  return result
end

---@return any value, string? err
function M.parse_json(text)
  local ok, result = pcall(json.decode, text)
  if not ok then
    return nil, tostring(result)
  end
  return result
end

return M
