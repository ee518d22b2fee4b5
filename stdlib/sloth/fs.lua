--- `fs`: file helpers existing pipelines use. Each returns `value, err` instead of raising.
--- Relative paths resolve against the running task's workdir.
local exec = require("exec")

local M = {}

local function run(argv)
  local out, err_out, err = exec.run(argv)
  if err then
    local detail = err_out:gsub("%s+$", "")
    return nil, detail ~= "" and detail or tostring(err)
  end
  return out
end

---@return string? content, string? err
function M.read(path)
  local file, err = io.open(path, "rb")
  if not file then
    return nil, err
  end
  local content = file:read("a")
  file:close()
  return content
end

local function write_mode(path, content, mode)
  local file, err = io.open(path, mode)
  if not file then
    return nil, err
  end
  local ok, write_err = file:write(content)
  file:close()
  if not ok then
    return nil, write_err
  end
  return true
end

---@return boolean? ok, string? err
function M.write(path, content)
  return write_mode(path, tostring(content), "wb")
end

---@return boolean? ok, string? err
function M.append(path, content)
  return write_mode(path, tostring(content), "ab")
end

---@return boolean
function M.exists(path)
  local _, _, err = exec.run({ "test", "-e", path })
  return err == nil
end

--- Creates a directory and its parents.
---@return boolean? ok, string? err
function M.mkdir(path)
  local out, err = run({ "mkdir", "-p", "--", path })
  return out and true, err
end

--- Removes a file or an empty directory.
---@return boolean? ok, string? err
function M.rm(path)
  local ok, err = os.remove(path)
  return ok, err
end

--- Removes a file or a directory with everything in it.
---@return boolean? ok, string? err
function M.rm_r(path)
  local out, err = run({ "rm", "-rf", "--", path })
  return out and true, err
end

--- Names in a directory, sorted.
---@return string[]? names, string? err
function M.ls(path)
  local out, err = run({ "ls", "-A1", "--", path or "." })
  if not out then
    return nil, err
  end
  local names = {}
  for name in out:gmatch("[^\n]+") do
    names[#names + 1] = name
  end
  table.sort(names)
  return names
end

--- A fresh temporary directory.
---@return string? path, string? err
function M.tmpname()
  local out, err = run({ "mktemp", "-d" })
  if not out then
    return nil, err
  end
  return (out:gsub("%s+$", ""))
end

return M
