--- `parallel({ task, ... }, input?)`: runs task tables (`{ name?, command?, params?, env?,
--- pre_exec?, post_exec?, timeout? }`; one without a command does nothing and succeeds, as in
--- the Go tool; any other field is an error naming it) at once from inside a task,
--- in its workdir, and returns their results in order:
--- `{ { name, ok, message, outputs, status, duration, error }, ... }`, plus an error message
--- naming the failures (nil when all succeeded). `status` ("success" or "failed"), `duration`
--- (seconds) and `error` (the message of a failure, else nil) are the fields the Go tool's
--- pipelines read. `input` (a table) is, as in the Go tool, the second argument of each task's
--- `command` and `pre_exec` functions, where a pipeline's task gets its dependencies' outputs.
local core = require("sloth.core")
local execute = require("sloth.execute")
local deadline = require("sloth.deadline")
local task_fields = require("sloth.task_fields")

local M = {}

--- The fields a parallel task table may have.
local FIELDS = { name = true, command = true, params = true, env = true, pre_exec = true, post_exec = true,
  timeout = true }

--- What a field a parallel task cannot have is, said where it is refused: it would be silently
--- ignored otherwise, and a command meant for another host would run on this one.
local NOT_HERE = {
  agent = "parallel tasks run here, in the calling task's workdir: make it a task of the pipeline with 'agent'",
  delegate_to = "parallel tasks run here, in the calling task's workdir: make it a task of the pipeline with 'delegate_to'",
}

--- A parallel task that notes when it ended (the results are collected in order, later);
--- past its `timeout` it is stopped, with what it started, and fails "timed out after …".
local function timed(job, task, input, workdir, timeout)
  local ok, message, outputs
  if timeout then
    local run = core.spawn(execute.run_here, nil, task, input, workdir)
    local timed_out = "timed out after " .. core.format_duration(timeout)
    local stopped, job_ok
    stopped, job_ok, ok, message, outputs = deadline.wait(run, timeout, timed_out)
    if stopped then
      ok, message, outputs = false, timed_out, {}
    elseif not job_ok then
      ok, message, outputs = false, tostring(ok), {}
    end
  else
    ok, message, outputs = execute.run_here(task, input, workdir)
  end
  job.finished = core.now()
  return ok, message, outputs
end

--- Entry `i` checked (raising an error that names it, as `parallel`'s caller's): its fields,
--- with `command` (none: one that does nothing and succeeds, as in the Go sloth-runner) and
--- `timeout` (seconds) as they will run.
local function checked(spec, i)
  -- (Raised at parallel's caller: past this function and M.run, and `deeper` more calls.)
  local function refuse(message, deeper)
    error(string.format("parallel: task #%d%s", i, message), 4 + (deeper or 0))
  end
  if type(spec) ~= "table" then
    refuse(string.format(" is a %s, not a task table", type(spec)))
  end
  for field in pairs(spec) do
    if not FIELDS[field] then
      local known = "name, command, params, env, pre_exec, post_exec, timeout"
      refuse(string.format(": unknown field '%s' (%s)", tostring(field), NOT_HERE[field] or ("a parallel task has " .. known)))
    end
  end
  local command = spec.command
  if command == nil then
    command = function()
      return true
    end
  elseif type(command) ~= "string" and type(command) ~= "function" then
    refuse(string.format(": 'command' must be a shell string or a function, got %s", type(command)))
  end
  for _, hook in ipairs({ "pre_exec", "post_exec" }) do
    if spec[hook] ~= nil and type(spec[hook]) ~= "function" then
      refuse(string.format(": '%s' must be a function, got %s", hook, type(spec[hook])))
    end
  end
  local timeout = spec.timeout ~= nil and task_fields.duration(function(field, reason)
    refuse(string.format(": field '%s': %s", field, reason), 2)
  end, "timeout", spec.timeout) or nil
  return { name = spec.name, command = command, params = spec.params, env = spec.env, pre_exec = spec.pre_exec,
    post_exec = spec.post_exec, timeout = timeout }
end

---@param tasks table[]
---@param input? table
---@return table[] results, string? err
function M.run(tasks, input)
  if type(tasks) ~= "table" then
    error("parallel: expected a list of task tables, got " .. type(tasks), 2)
  end
  if input ~= nil and type(input) ~= "table" then
    error("parallel: expected a table for 'input', got " .. type(input), 2)
  end
  input = input or {}
  local context = core.context()
  local workdir = context and context.workdir or core.cwd()
  -- Every entry is checked before any starts: a refused one must not leave others running.
  local specs = {}
  for i, spec in ipairs(tasks) do
    specs[i] = checked(spec, i)
  end
  local jobs = {}
  for i, spec in ipairs(specs) do
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
      pre_exec = spec.pre_exec,
      post_exec = spec.post_exec,
    }
    local job_context = {
      group = task.group,
      task = task.name,
      prefix = context and context.prefix or task.name,
      workdir = workdir,
      env = env,
    }
    local job = { task = task, started = core.now() }
    job.id = core.spawn(timed, job_context, job, task, input, workdir, spec.timeout)
    jobs[i] = job
  end
  local results, failures = {}, {}
  for i, job in ipairs(jobs) do
    local job_ok, ok, message, outputs = core.wait(job.id)
    -- Jobs are awaited in order, so a job that finished early is timed when it is collected;
    -- it records its own end instead.
    local finished = job.finished or core.now()
    if not job_ok then
      ok, message, outputs = false, tostring(ok), {}
    end
    results[i] = { name = job.task.name, ok = ok, message = message, outputs = outputs or {},
      status = ok and "success" or "failed", duration = finished - job.started,
      error = (not ok) and tostring(message) or nil }
    if not ok then
      failures[#failures + 1] = string.format("%s: %s", job.task.name, tostring(message))
    end
  end
  return results, #failures > 0 and table.concat(failures, "; ") or nil
end

return M
