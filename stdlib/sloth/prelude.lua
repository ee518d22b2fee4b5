--- Runs once in every VM before any user code: makes relative paths in Lua's own file
--- functions resolve against the running task's workdir, and lets coroutines a task creates
--- keep its context.
local core = require("sloth.core")
local paths = require("sloth.paths")

local contexts = core.contexts

--- `path` resolved against the running task's workdir; unchanged outside a task.
local function resolve(path)
  if type(path) ~= "string" or paths.is_absolute(path) then
    return path
  end
  local context = contexts[coroutine.running()]
  if context and context.workdir then
    return paths.join(context.workdir, path)
  end
  return path
end

local function wrap_path_argument(lib, name)
  local original = lib[name]
  lib[name] = function(path, ...)
    return original(resolve(path), ...)
  end
end

wrap_path_argument(io, "open")
wrap_path_argument(io, "lines")
wrap_path_argument(os, "remove")

local original_rename = os.rename
os.rename = function(from, to)
  return original_rename(resolve(from), resolve(to))
end

local original_io_input, original_io_output = io.input, io.output
io.input = function(file)
  return original_io_input(resolve(file))
end
io.output = function(file)
  return original_io_output(resolve(file))
end

-- A coroutine created inside a task belongs to that task.
local original_create, original_wrap = coroutine.create, coroutine.wrap
coroutine.create = function(fn)
  local co = original_create(fn)
  contexts[co] = contexts[coroutine.running()]
  return co
end
coroutine.wrap = function(fn)
  local co = coroutine.create(fn)
  return function(...)
    local results = table.pack(coroutine.resume(co, ...))
    if not results[1] then
      error(results[2], 2)
    end
    return table.unpack(results, 2, results.n)
  end
end
local _ = original_wrap

return true
