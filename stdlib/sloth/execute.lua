--- Runs one task's command inside the running job, whose coroutine carries the task's context
--- (so `log` lines are prefixed and relative paths resolve against the workdir).
-- Taken now: a test's mock of `exec.run` is for the pipeline's code, not its shell commands.
local exec_run = require("exec").run
local core = require("sloth.core")
local preempt = require("sloth.preempt")

local M = {}

local function last_line(text)
  local last
  for line in (text or ""):gmatch("[^\n]+") do
    if line:match("%S") then
      last = line
    end
  end
  return last
end

--- The error with a traceback of the user's frames only: the engine's frames below the
--- task's function are noise to whoever reads it.
local function user_traceback(err)
  -- (As `lua` says it: an error value that is not text and cannot say itself. The host's
  -- errors are userdata that can.)
  local kind = type(err)
  local meta = getmetatable(err)
  if kind == "table" and not (type(meta) == "table" and meta.__tostring) or kind == "nil" or kind == "boolean"
    or kind == "function" or kind == "thread" then
    err = string.format("(error object is a %s value)", kind)
  end
  local text = tostring(err)
  -- An error a native function raised carries its traceback already (one more said it twice).
  local trace = text:find("\nstack traceback:\n", 1, true) and text or debug.traceback(text, 2)
  -- A stop the pipeline's own pcall passed on (see `sloth.prelude`) is raised from there:
  -- where the pipeline was is what is shown, as for a stop raised in its code.
  trace = trace:gsub("\n\t%[C%]: in function 'error'\n\t[^\n]*sloth/prelude%.lua:%d+: in function <[^\n]*>\n\t%(%.%.%.tail calls%.%.%.%)", "", 1)
  -- Below the task's function: the engine's frames (the same wherever the task runs, here
  -- or on an agent, then).
  local cut = trace:find("\n\t%[C%]: in upvalue 'fn'\n\t[^\n]*sloth/prelude%.lua:%d+: in function 'sloth%.core%.raw_xpcall'")
    or trace:find("\n\t%[C%]: in function '[%w%._]*xpcall'")
  return cut and trace:sub(1, cut - 1) or trace
end

--- The `params` a task's functions receive: its own, plus where and what it is.
---@return table
function M.params(task, workdir)
  local params = {}
  for k, v in pairs(task.params) do
    params[k] = v
  end
  params.workdir = workdir
  params.task_name = task.name
  params.group_name = task.group
  return params
end

--- Calls a user function, catching errors with the user's traceback.
---@return boolean called, any ...
function M.call(fn, ...)
  return preempt.xpcall(fn, user_traceback, ...)
end

--- A size in bytes as people write it: 64M, 1G, 512K.
local function size_text(bytes)
  for _, unit in ipairs({ { 2 ^ 30, "G" }, { 2 ^ 20, "M" }, { 2 ^ 10, "K" } }) do
    if bytes % unit[1] == 0 then
      return string.format("%d%s", bytes // unit[1], unit[2])
    end
  end
  return tostring(bytes)
end

--- A task's error as people read it: Lua's own out-of-memory error names the limit, and an
--- error from the host (a deadline, a native function) loses mlua's "runtime error: " prefix.
local function error_text(err)
  if err == "not enough memory" then
    local limit = core.memory_limit()
    return limit and string.format("Lua memory limit (%s) exceeded", size_text(limit)) or "Lua ran out of memory"
  end
  return (tostring(err):gsub("^runtime error: ", ""))
end

--- Checks what a command function returned (`called` is xpcall's first result).
local function function_results(called, ok, message, outputs)
  if not called then
    return false, error_text(ok)
  end
  if type(ok) ~= "boolean" then
    return false, string.format(
      "the command function must return a boolean first (ok, msg, outputs), got %s", type(ok))
  end
  if outputs ~= nil and type(outputs) ~= "table" then
    return false, string.format("the command function's third result (outputs) must be a table, got %s", type(outputs))
  end
  if message ~= nil then
    message = tostring(message)
  end
  return ok, message, outputs or {}
end

local function run_function(task, params, deps)
  return function_results(preempt.xpcall(task.command, user_traceback, params, deps))
end

local function run_shell(task, workdir)
  local stdout, stderr, err = exec_run(task.command, { cwd = workdir, stream = true })
  local outputs = { stdout = stdout, stderr = stderr, exit_code = err and err.code or 0 }
  if err then
    local tail = last_line(stderr)
    return false, tostring(err) .. (tail and (": " .. tail) or ""), outputs
  end
  return true, nil, outputs
end

--- Calls a `pre_exec`/`post_exec` hook; `false, message` (naming the hook) when it fails.
local function call_hook(name, hook, ...)
  local results = table.pack(preempt.xpcall(hook, user_traceback, ...))
  if not results[1] then
    return false, name .. " failed: " .. tostring(results[2])
  end
  local ok, message = results[2], results[3]
  if ok == true then
    return true
  end
  if ok == false then
    return false, name .. " failed" .. (message ~= nil and (": " .. tostring(message)) or "")
  end
  return false, string.format("%s failed: it must return a boolean first (ok, msg), got %s", name, type(ok))
end

--- Runs `task` on this machine, whatever its `agent` says: `pre_exec`, the command, and
--- `post_exec` after success.
---@param task table a normalized task
---@param deps table<string, table> outputs of the task's dependencies, by name
---@param workdir string
---@return boolean ok, string? message, table outputs
function M.run_here(task, deps, workdir)
  local params = M.params(task, workdir)
  if task.pre_exec then
    local ok, message = call_hook("pre_exec", task.pre_exec, params, deps)
    if not ok then
      return false, message, {}
    end
  end
  local ok, message, outputs
  if type(task.command) == "function" then
    ok, message, outputs = run_function(task, params, deps)
  else
    ok, message, outputs = run_shell(task, workdir)
  end
  if ok and task.post_exec then
    local hook_ok, hook_message = call_hook("post_exec", task.post_exec, params, outputs)
    if not hook_ok then
      return false, hook_message, outputs
    end
  end
  return ok, message, outputs
end

--- Runs `task` where it belongs: on an agent when it has candidates, else here.
---@param attempt? { number: integer, failures: table[] } for dispatch policies
---@return boolean ok, string? message, table outputs
function M.run(task, deps, workdir, attempt)
  if task.remote then
    return require("sloth.remote").run(task, deps, workdir, attempt)
  end
  return M.run_here(task, deps, workdir)
end

return M
