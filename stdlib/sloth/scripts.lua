--- The Lua files a pipeline is made of: the pipeline itself and everything it loaded through
--- `import` or `require`. The master records them so that a remote task's agent gets them all
--- (imports work even from outside the workspace); on the agent they are served from what was
--- shipped instead of the disk.
local paths = require("sloth.paths")

local M = {}

--- path -> content of every file loaded so far (master side), by normalized path.
M.loaded = {}

--- path -> content shipped by the master (agent side); nil on the master.
M.shipped = nil

-- The real `io.open`: the prelude makes the global one resolve against the running task's
-- workdir, but scripts are found relative to the files that load them.
local raw_open = io.open

--- The key a script is known by on both sides.
---@param path string
function M.key(path)
  return paths.normalize(path)
end

--- The content of a script: shipped (agent) or read from disk (master, which records it).
---@param path string
---@return string? content, string? err
function M.read(path)
  local key = M.key(path)
  if M.shipped then
    local content = M.shipped[key]
    if content == nil then
      return nil, "cannot open " .. path .. " (not shipped by the master)"
    end
    return content
  end
  local file, err = raw_open(path, "rb")
  if not file then
    return nil, err
  end
  local content = file:read("a")
  file:close()
  M.loaded[key] = content
  return content
end

--- Loads a script as a chunk named after its path, so errors name the user's file and line.
---@param path string
---@return function? chunk, string? err
function M.load(path)
  local content, err = M.read(path)
  if content == nil then
    return nil, err
  end
  return load(content, "@" .. path, "t")
end

--- Whether a script exists (shipped, or on disk).
function M.exists(path)
  if M.shipped then
    return M.shipped[M.key(path)] ~= nil
  end
  local file = raw_open(path, "rb")
  if file then
    file:close()
    return true
  end
  return false
end

--- The directory holding the file that called the caller (for relative imports).
---@param level integer stack level of the function whose caller matters
function M.caller_dir(level)
  local info = debug.getinfo(level + 1, "S")
  local source = info and info.source or ""
  if source:sub(1, 1) == "@" then
    return paths.dirname(source:sub(2))
  end
  return "."
end

return M
