--- Path helpers (POSIX paths, as strings).
local M = {}

---@param path string
function M.is_absolute(path)
  return path:sub(1, 1) == "/"
end

---@param base string
---@param path string
function M.join(base, path)
  if M.is_absolute(path) then
    return path
  end
  if path == "." or path == "" then
    return base
  end
  if base:sub(-1) == "/" then
    return base .. path
  end
  return base .. "/" .. path
end

--- The directory part of a path ("." when there is none).
---@param path string
function M.dirname(path)
  local dir = path:match("^(.*)/[^/]*$")
  if dir == nil then
    return "."
  end
  if dir == "" then
    return "/"
  end
  return dir
end

--- Removes "." segments and resolves ".." where possible.
---@param path string
function M.normalize(path)
  local absolute = M.is_absolute(path)
  local out = {}
  for part in path:gmatch("[^/]+") do
    if part == ".." and #out > 0 and out[#out] ~= ".." then
      out[#out] = nil
    elseif part ~= "." then
      out[#out + 1] = part
    end
  end
  local joined = table.concat(out, "/")
  if absolute then
    return "/" .. joined
  end
  return joined == "" and "." or joined
end

--- An absolute, normalized path for `path` relative to `base` (default: the process cwd).
---@param path string
---@param base? string
function M.absolute(path, base)
  return M.normalize(M.join(base or require("sloth.core").cwd(), path))
end

return M
