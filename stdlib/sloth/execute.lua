--- Runs one task's command inside the running job, whose coroutine carries the task's context
--- (so `log` lines are prefixed and relative paths resolve against the workdir).
local exec = require("exec")

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
  local trace = debug.traceback(tostring(err), 2)
  local cut = trace:find("\n\t%[C%]: in function 'xpcall'")
  return cut and trace:sub(1, cut - 1) or trace
end

local function run_function(task, deps, workdir)
  local params = {}
  for k, v in pairs(task.params) do
    params[k] = v
  end
  params.workdir = workdir
  params.task_name = task.name
  params.group_name = task.group
  local results = table.pack(xpcall(task.command, user_traceback, params, deps))
  if not results[1] then
    return false, tostring(results[2])
  end
  local ok, message, outputs = results[2], results[3], results[4]
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

local function run_shell(task, workdir)
  local stdout, stderr, err = exec.run(task.command, { cwd = workdir, stream = true })
  local outputs = { stdout = stdout, stderr = stderr, exit_code = err and err.code or 0 }
  if err then
    local tail = last_line(stderr)
    return false, tostring(err) .. (tail and (": " .. tail) or ""), outputs
  end
  return true, nil, outputs
end

--- Runs `task` on this machine, whatever its `agent` says.
---@param task table a normalized task
---@param deps table<string, table> outputs of the task's dependencies, by name
---@param workdir string
---@return boolean ok, string? message, table outputs
function M.run_here(task, deps, workdir)
  if type(task.command) == "function" then
    return run_function(task, deps, workdir)
  end
  return run_shell(task, workdir)
end

--- Runs `task` where it belongs: on its agent when it has one, else here.
---@return boolean ok, string? message, table outputs
function M.run(task, deps, workdir)
  if task.remote then
    return require("sloth.remote").run(task, deps, workdir)
  end
  return M.run_here(task, deps, workdir)
end

return M
