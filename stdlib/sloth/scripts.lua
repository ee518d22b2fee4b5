--- The Lua files a pipeline is made of: the pipeline itself and everything it loaded through
--- `import` or `require`. The master records them so that a remote task's agent gets them all
--- (imports work even from outside the workspace); on the agent they are served from what was
--- shipped instead of the disk.
local paths = require("sloth.paths")
local preempt = require("sloth.preempt")

local M = {}

--- path -> content of every file loaded so far (master side), by normalized path.
M.loaded = {}

--- path -> content shipped by the master (agent side); nil on the master.
M.shipped = nil

--- Agent side: where the running task's copy of the master's workspace is — `root` here,
--- `workspace` on the master, whose working directory `cwd` relative paths start from. A
--- script not shipped is read there if it lies in the workspace; nil: nothing is.
---@type { cwd: string, workspace: string, root: string }?
M.tree = nil

--- path -> content to use instead of the file's (master side): the pipeline file rendered as
--- a template (`-e`, `-p`, `--shards`). It is what agents are shipped, too.
M.provided = {}

-- The real `io.open`: the prelude makes the global one resolve against the running task's
-- workdir, but scripts are found relative to the files that load them.
local raw_open = io.open

--- The key a script is known by on both sides.
---@param path string
function M.key(path)
  return paths.normalize(path)
end

--- Agent side: the path in the task's copy of the workspace of a script the master would read
--- at `key`, or nil when it lies outside the workspace.
---@param key string
---@return string?
local function in_tree(key, tree)
  tree = tree or M.tree
  if not tree then
    return nil
  end
  local absolute = paths.absolute(key, tree.cwd)
  local workspace = paths.normalize(tree.workspace)
  if workspace == "/" then
    return paths.join(tree.root, absolute:sub(2))
  end
  if absolute:sub(1, #workspace + 1) == workspace .. "/" then
    return paths.join(tree.root, absolute:sub(#workspace + 2))
  end
  return nil
end

--- Agent side, as the pipeline is read again for a task: where a path the master's reading of
--- it named (a relative one against the master's working directory) is here — in the task's
--- copy of the workspace when it lies in the workspace, else the master's own path (on
--- another machine, most likely nothing).
---@param path string
---@param tree { cwd: string, workspace: string, root: string }
---@return string
function M.here(path, tree)
  local absolute = paths.absolute(path, tree.cwd)
  if absolute == paths.normalize(tree.workspace) then
    return tree.root
  end
  return in_tree(absolute, tree) or absolute
end

--- Reads a whole file; nil and why when it cannot be.
local function read_file(path)
  local file, err = raw_open(path, "rb")
  if not file then
    return nil, err
  end
  local content, read_error = file:read("a")
  file:close()
  if content == nil then
    -- (A directory opens, and then cannot be read.)
    return nil, string.format("%s: %s", path, read_error or "cannot be read")
  end
  return content
end

--- The content of a script: shipped (agent; one loaded only as a task runs comes from the
--- task's copy of the workspace) or read from disk (master, which records it).
---@param path string
---@return string? content, string? err
function M.read(path)
  local key = M.key(path)
  if M.shipped then
    local content = M.shipped[key]
    if content == nil then
      local copy = in_tree(key)
      if copy then
        content = read_file(copy)
      end
      if content == nil then
        return nil, "cannot open " .. path .. (copy and " (not in the workspace sent to this agent)"
          or " (outside the workspace, and not loaded as the master read the pipeline: not shipped)")
      end
    end
    return content
  end
  if M.provided[key] then
    M.loaded[key] = M.provided[key]
    return M.provided[key]
  end
  local content, err = read_file(path)
  if content == nil then
    return nil, err
  end
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

--- Reads `path` as `content` from now on (see `provided`).
---@param path string
---@param content string
function M.provide(path, content)
  M.provided[M.key(path)] = content
end

--- Whether a script exists (shipped, or on disk).
function M.exists(path)
  if M.shipped then
    local key = M.key(path)
    if M.shipped[key] ~= nil then
      return true
    end
    local copy = in_tree(key)
    local file = copy and raw_open(copy, "rb")
    if file then
      file:close()
      return true
    end
    return false
  end
  if M.provided[M.key(path)] then
    return true
  end
  local file = raw_open(path, "rb")
  if file then
    file:close()
    return true
  end
  return false
end

--- Files whose top level is running now, innermost last (see `run`).
local running = {}

--- An error raised while a pipeline's files run, with a traceback of the user's frames only
--- (the engine's frames below them are noise to whoever reads it); an error that has its
--- traceback already (from a file imported deeper) is left as it is.
local function user_traceback(err)
  if type(err) ~= "string" or err:find("\nstack traceback:\n", 1, true) then
    return err
  end
  local trace = debug.traceback(err, 2)
  local head, frames = trace:match("^(.-\nstack traceback:\n)(.*)$")
  if not head then
    return trace
  end
  -- The user's frames, an importing file's included; the engine's and its protected calls
  -- left out.
  local kept = {}
  for line in frames:gmatch("[^\n]+") do
    local engine = line:find("stdlib/sloth/", 1, true) or line:find("%[C%]: in function '[x]?pcall'")
      or line:find("[C]: in ?", 1, true) or line:find("(...tail calls...)", 1, true)
    if not engine then
      kept[#kept + 1] = line
    end
  end
  if #kept == 0 then
    return err
  end
  return head .. table.concat(kept, "\n")
end

--- Runs a loaded chunk, remembering which file's top level is running.
---@param path string
---@param chunk function
function M.run(path, chunk, ...)
  running[#running + 1] = path
  local results = table.pack(preempt.xpcall(chunk, user_traceback, ...))
  running[#running] = nil
  if not results[1] then
    error(results[2], 0)
  end
  return table.unpack(results, 2, results.n)
end

--- The directory holding the file that called the function at `level` (for relative
--- imports). A tail call (`return import("x.lua")`) hides the caller; then the file whose top
--- level is running is the caller.
---@param level integer stack level of the function whose caller matters
function M.caller_dir(level)
  local this = debug.getinfo(level, "t")
  local source
  if this and this.istailcall and #running > 0 then
    source = "@" .. running[#running]
  else
    local info = debug.getinfo(level + 1, "S")
    source = info and info.source or ""
  end
  if source:sub(1, 1) == "@" then
    return paths.dirname(source:sub(2))
  end
  return "."
end

return M
