--- Runs once in every VM before any user code: the globals pipelines expect (`import`), user
--- modules found beside the pipeline through `require`, relative paths in Lua's own file
--- functions resolved against the running task's workdir, and coroutines a task creates
--- keeping its context.
local core = require("sloth.core")
local paths = require("sloth.paths")
local scripts = require("sloth.scripts")

local contexts = core.contexts

--- `export(table)`: publishes values (`run --return` prints them).
function export(values)
  require("sloth.exports").add(values)
end

--- `parallel({ task, ... }, input?)`: runs task tables at once; returns their results.
function parallel(tasks, input)
  return require("sloth.parallel").run(tasks, input)
end

--- Stdlib modules the Go tool's pipelines use as globals, loaded on first use
--- (`sloth.lazy_globals`).
local LAZY_GLOBALS = require("sloth.lazy_globals")
setmetatable(_G, {
  __index = function(_, name)
    local module = LAZY_GLOBALS[name]
    if module == nil then
      return nil
    end
    local value = require(module)
    rawset(_G, name, value)
    return value
  end,
})

--- `import(path)`: runs a Lua file relative to the importing file and returns its value.
--- Each file runs once per VM; later imports return the same value.
local imported = {}
-- Files being imported right now, outermost first: one imported again before it finished is a
-- cycle, said as one rather than as a stack overflow.
local importing = {}
function import(path)
  if type(path) ~= "string" then
    error("import: expected string for 'path', got " .. type(path), 2)
  end
  local full = scripts.key(paths.join(scripts.caller_dir(2), path))
  if imported[full] ~= nil then
    return imported[full]
  end
  for i, file in ipairs(importing) do
    if file == full then
      local chain = table.move(importing, i, #importing, 1, {})
      chain[#chain + 1] = full
      error("import cycle: " .. table.concat(chain, " → "), 2)
    end
  end
  local chunk, err = scripts.load(full)
  if not chunk then
    error("import: " .. tostring(err), 2)
  end
  importing[#importing + 1] = full
  -- Taken off again however the file ends (an error unwinds through it unchanged).
  local _ <close> = setmetatable({}, { __close = function()
    importing[#importing] = nil
  end })
  local value = scripts.run(full, chunk)
  if value == nil then
    value = true
  end
  imported[full] = value
  return value
end

-- `require` finds user modules through `package.path` (the pipeline's directory comes first,
-- see `sloth.taskdefs`), reading them through `sloth.scripts` so they are shipped to agents.
table.insert(package.searchers, 2, function(name)
  local relative = name:gsub("%.", "/")
  local tried = {}
  for template in package.path:gmatch("[^;]+") do
    local candidate = template:gsub("%?", relative)
    if scripts.exists(candidate) then
      local chunk, err = scripts.load(candidate)
      if not chunk then
        error(err, 0)
      end
      return chunk, candidate
    end
    tried[#tried + 1] = "\n\tno file '" .. candidate .. "'"
  end
  if scripts.shipped then
    tried[#tried + 1] = "\n\t(on an agent: a module outside the workspace is there only if the master loaded it"
      .. " as it read the pipeline — require it at the pipeline's top level)"
  end
  return table.concat(tried)
end)

--- `path` resolved against the running task's workdir; unchanged outside a task. On an agent
--- reading the pipeline for a task, the master's path as it is here (see `sloth.scripts.here`).
local function resolve(path)
  if type(path) ~= "string" then
    return path
  end
  local context = contexts[coroutine.running()]
  if context and context.reading then
    return scripts.here(path, context.reading)
  end
  if paths.is_absolute(path) then
    return path
  end
  if context and context.workdir then
    return paths.join(context.workdir, path)
  end
  return path
end

--- The reading of the pipeline an agent does for a task, when that is what runs: what the
--- pipeline's top level writes it wrote on the master already, as the master read it, and the
--- task's copy holds the result. Read again here, it reads what the master read and writes
--- nothing: a file it opens to write is a scratch copy, a removal or a rename does nothing
--- (and says it succeeded, as it did there), and a command it runs is noted (the agent then
--- checks that the task's copy is as the master sent it).
local function reading()
  local context = contexts[coroutine.running()]
  -- (`done`: a coroutine the top level made, resumed by a task later, writes as the task.)
  return context and context.reading and not context.reading.done and context.reading
end
local scratch_file = core.scratch_file

local function wrap_path_argument(lib, name)
  local original = lib[name]
  lib[name] = function(path, ...)
    return original(resolve(path), ...)
  end
end

-- A read or an open that failed may have been interrupted because the task must stop (see
-- src/runtime/interrupt.rs: a call blocked in native code runs no hook): the task stops right
-- there, not on whatever it does next with the nil it got (writing an empty file over one of
-- the user's, say).
local raise_if_stopped = core.raise_if_stopped
local function unless_stopped(first, ...)
  if first == nil then
    raise_if_stopped()
  end
  return first, ...
end
local original_read = io.read
io.read = function(...)
  return unless_stopped(original_read(...))
end
local file_methods = getmetatable(io.stdin).__index
local original_file_read = file_methods.read
file_methods.read = function(file, ...)
  return unless_stopped(original_file_read(file, ...))
end

-- A file Lua opens is not inherited by the commands tasks start (see src/runtime/lua_files.rs):
-- a script one task writes while another starts a command would be "busy" when run.
local original_open = io.open
--- A scratch copy of `path` (with its content only for a mode that reads it too: `r+`,
--- `a+`), open in `mode`.
local function scratch_copy(path, mode)
  local copy = scratch_file()
  if mode:find("+", 1, true) and not mode:find("w", 1, true) then
    local target = original_open(copy, "wb")
    require("sloth.os_commands").each_piece(path, 0, function(piece)
      target:write(piece)
    end)
    target:close()
  end
  local file, message, code = original_open(copy, mode)
  if file then
    core.close_on_exec(file)
  end
  return file, message, code
end
io.open = function(path, mode, ...)
  if reading() and type(mode) == "string" and mode:find("[wa+]") then
    return scratch_copy(resolve(path), mode)
  end
  local file, message, code = unless_stopped(original_open(resolve(path), mode, ...))
  if file then
    core.close_on_exec(file)
  end
  return file, message, code
end
wrap_path_argument(io, "lines")
-- (A task's `dofile("x.lua")` reads its workdir's x.lua, here or in the agent's copy.)
wrap_path_argument(_G, "dofile")
wrap_path_argument(_G, "loadfile")

local original_rename, original_remove = os.rename, os.remove
os.rename = function(from, to)
  if reading() then
    return true
  end
  return original_rename(resolve(from), resolve(to))
end
os.remove = function(path)
  if reading() then
    return true
  end
  return original_remove(resolve(path))
end

local original_io_input, original_io_output = io.input, io.output
io.input = function(file)
  return original_io_input(resolve(file))
end
io.output = function(file)
  if reading() and type(file) == "string" then
    return original_io_output(scratch_copy(resolve(file), "w"))
  end
  local output = original_io_output(resolve(file))
  if type(file) == "string" then
    core.close_on_exec(output)
  end
  return output
end

-- The hook a pipeline's code runs under is the runner's: it stops that code at its task's
-- timeout and on cancellation. One the pipeline set instead (`debug.sethook()`, then a loop)
-- ran for ever, here and on an agent, ignoring both.
debug.sethook = function()
  error("debug.sethook: a pipeline's code runs under the runner's own hook (its timeouts and cancellation), "
    .. "which it cannot replace", 2)
end
-- Nor reach into the runner's functions and state (the upvalues that hold Lua's own pcall,
-- the registry that holds the host's data): what keeps a task to its timeout stays out of its
-- reach. (None of these is used by the engine; debug.getinfo and traceback stay.)
for _, name in ipairs({ "getupvalue", "setupvalue", "upvaluejoin", "getregistry", "getlocal", "setlocal",
  "getuservalue", "setuservalue", "setmetatable" }) do
  debug[name] = function()
    error("debug." .. name .. ": not available to a pipeline's code (the runner's own state, which keeps tasks' "
      .. "timeouts and cancellation, is out of its reach)", 2)
  end
end

-- os.exit ends the run, never more: on an agent it ends its task only (see runtime/exit.rs).
os.exit = core.exit

-- Shell commands started from Lua run in the task's workdir too, and belong to the task.
local os_commands = require("sloth.os_commands")
--- `fn`, noting that a command ran when it runs as an agent reads the pipeline.
local function noting_commands(fn)
  return function(...)
    local now = reading()
    if now then
      now.ran_command = true
    end
    return fn(...)
  end
end
os.execute = noting_commands(os_commands.execute)
io.popen = noting_commands(os_commands.popen)
io.type = os_commands.io_type
exec.run = noting_commands(exec.run)
exec.command = noting_commands(exec.command)
-- What the pipeline's top level writes through `fs` or downloads, read again on an agent, is
-- not written (see `reading`); the engine's own archive functions are not for a top level.
for _, name in ipairs({ "write", "append", "mkdir", "rm", "rm_r", "copy" }) do
  local original = fs[name]
  fs[name] = function(...)
    if reading() then
      return true
    end
    return original(...)
  end
end
local original_download = net.download
net.download = function(...)
  if reading() then
    return nil
  end
  return original_download(...)
end
for _, name in ipairs({ "pack", "unpack", "apply", "changes", "recover" }) do
  local original = workspace[name]
  workspace[name] = function(...)
    if reading() then
      error("workspace." .. name .. ": not while an agent reads the pipeline again for a task (its top level ran on the"
        .. " master, which did this there): call it from a task", 2)
    end
    return original(...)
  end
end

-- A coroutine created inside a task belongs to that task.
local original_create = coroutine.create
coroutine.create = function(fn)
  local co = original_create(fn)
  contexts[co] = contexts[coroutine.running()]
  os_commands.user_coroutines[co] = true
  -- A deadline left under this address by a coroutine that never ended is not this one's: it
  -- takes its resumer's when resumed.
  core.adopt_deadline(co, false)
  return co
end
-- A coroutine runs under the deadline of the task that resumes it (a timeout stops it too).
local original_resume, adopt_deadline, coroutine_status = coroutine.resume, core.adopt_deadline, coroutine.status
--- What `resume` returned, once a coroutine that is done has its deadline forgotten.
local function resumed(co, ...)
  if coroutine_status(co) == "dead" then
    adopt_deadline(co, false)
  end
  return ...
end
coroutine.resume = function(co, ...)
  if type(co) ~= "thread" then
    return original_resume(co, ...)
  end
  adopt_deadline(co, true)
  return resumed(co, original_resume(co, ...))
end

-- A stop (the task's deadline passed, the run cancelled) raised in the pipeline's code is not
-- swallowed by the pipeline's own `pcall`, `xpcall` or `coroutine.resume`: it passes on, and
-- the task stops as it would without them (a `pcall` in a loop otherwise kept a timed-out
-- task running for ever, and one around each item made it succeed). The engine's own calls
-- are as Lua's.
local raw_pcall, raw_xpcall, protected_resume = pcall, xpcall, coroutine.resume
local stopped, is_engine_source, getinfo = core.stopped, core.is_engine_source, debug.getinfo
local wrappers = {}
--- Whose call it was: the first function from `level` up (as the function calling this counts
--- levels) that is neither C nor one of these wrappers (`pcall(pcall, f)`: the outer pcall was
--- called by the pipeline); nil when there is none.
local function first_caller(level)
  level = level + 1
  local caller = getinfo(level, "Sf")
  while caller and (caller.what == "C" or wrappers[caller.func]) do
    level = level + 1
    caller = getinfo(level, "Sf")
  end
  return caller
end
--- Raises the stop if what the caller caught was one (level 2: the caller of the tail-called
--- wrapper below).
local function passed_on(ok, ...)
  if not ok then
    local why = stopped()
    if why then
      local caller = first_caller(2)
      if caller and not is_engine_source(caller.source) then
        error(why, 0)
      end
    end
  end
  return ok, ...
end
--- Whether the caller of the function calling this is the engine's code.
local function engine_caller()
  local caller = first_caller(3)
  return caller == nil or is_engine_source(caller.source)
end
--- The engine's own pcall and xpcall, which catch a stop (see sloth.preempt): not the
--- pipeline's, whose stops pass on.
local function engine_only(name, fn)
  return function(...)
    if not engine_caller() then
      error("sloth.core." .. name .. " is the runner's own (it keeps tasks' timeouts and cancellation), not a pipeline's", 2)
    end
    return fn(...)
  end
end
core.raw_pcall, core.raw_xpcall = engine_only("raw_pcall", raw_pcall), engine_only("raw_xpcall", raw_xpcall)
pcall = function(...)
  return passed_on(raw_pcall(...))
end
xpcall = function(...)
  return passed_on(raw_xpcall(...))
end
coroutine.resume = function(...)
  return passed_on(protected_resume(...))
end
wrappers[pcall], wrappers[xpcall], wrappers[coroutine.resume] = true, true, true
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

return true
