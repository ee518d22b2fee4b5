--- `parallel({ task, ... })`: runs task tables (`{ name?, command, params? }`) at once from
--- inside a task, in its workdir, and returns their results in order:
--- `{ { name, ok, message, outputs }, ... }`, plus an error message naming the failures (nil
--- when all succeeded).
local core = require("sloth.core")
local execute = require("sloth.execute")

local M = {}

---@param tasks table[]
---@return table[] results, string? err
function M.run(tasks)
  if type(tasks) ~= "table" then
    error("parallel: expected a list of task tables, got " .. type(tasks), 2)
  end
  local context = core.context()
  local workdir = context and context.workdir or core.cwd()
  local jobs = {}
  for i, spec in ipairs(tasks) do
    if type(spec) ~= "table" or (type(spec.command) ~= "string" and type(spec.command) ~= "function") then
      error(string.format("parallel: task #%d needs a 'command' (a shell string or a function)", i), 2)
    end
    -- The calling task's environment, then the parallel task's own on top.
    local env = {}
    for name, value in pairs(context and context.env or {}) do
      env[name] = value
    end
    for name, value in pairs(spec.env or {}) do
      env[name] = value
    end
    local task = {
      name = spec.name or ("parallel#" .. i),
      group = context and context.group or "",
      command = spec.command,
      params = spec.params or {},
      env = env,
    }
    local job_context = {
      group = task.group,
      task = task.name,
      prefix = context and context.prefix or task.name,
      workdir = workdir,
      env = env,
    }
    jobs[i] = { task = task, id = core.spawn(execute.run_here, job_context, task, {}, workdir) }
  end
  local results, failures = {}, {}
  for i, job in ipairs(jobs) do
    local job_ok, ok, message, outputs = core.wait(job.id)
    if not job_ok then
      ok, message, outputs = false, tostring(ok), {}
    end
    results[i] = { name = job.task.name, ok = ok, message = message, outputs = outputs or {} }
    if not ok then
      failures[#failures + 1] = string.format("%s: %s", job.task.name, tostring(message))
    end
  end
  return results, #failures > 0 and table.concat(failures, "; ") or nil
end

return M
