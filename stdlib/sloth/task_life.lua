--- One task's whole life, inside its job: `abort_if`, `run_if`, `consumes`, attempts (each
--- bounded by `timeout`, repeated up to `retries` times with exponential backoff), and
--- `artifacts` after success.
local core = require("sloth.core")
-- Taken now: a test's mock of `exec.run` is for the pipeline's code, not `run_if` commands.
local exec_run = require("exec").run
local execute = require("sloth.execute")
local artifacts = require("sloth.artifacts")
local task_fields = require("sloth.task_fields")
local deadline = require("sloth.deadline")

local M = {}

--- How long past its timeout a remote task's answer is waited for: its agent stops it at the
--- timeout and answers with what it did (its changes, which `sync_back = "always"` brings
--- back); only an agent that does not answer by then is cut off here.
local REMOTE_GRACE = 30

--- Evaluates a condition: a shell command (exit 0 = true) in the workdir, or a function.
---@return boolean? value, string? err
local function condition(name, cond, params, deps, workdir)
  if type(cond) == "string" then
    local _, _, err = exec_run(cond, { cwd = workdir })
    return err == nil
  end
  local called, value = execute.call(cond, params, deps)
  if not called then
    return nil, name .. " failed: " .. tostring(value)
  end
  return value and true or false
end

--- Runs one attempt, cancelling it (and killing what it started, here or on an agent) when
--- `seconds` pass first.
local function attempt(task, deps, workdir, info)
  if not task.timeout then
    return execute.run(task, deps, workdir, info)
  end
  -- A remote task's wait for a slot at its agent is not counted (the agent counts from the
  -- task's start too).
  local queue = task.remote and deadline.queue_clock()
  if info then
    info.queue = queue
  end
  local job = core.spawn(execute.run, nil, task, deps, workdir, info)
  local timed_out = "timed out after " .. core.format_duration(task.timeout)
  local limit = task.remote and task.timeout + REMOTE_GRACE or task.timeout
  local stopped, job_ok, ok, message, outputs = deadline.wait(job, limit, timed_out, queue)
  if stopped then
    return false, timed_out, {}
  end
  if not job_ok then
    return false, tostring(ok), {}
  end
  return ok, message, outputs
end

--- Pause before attempt `n + 1`: `retry_delay`, doubled each time, capped.
local function backoff(task, n)
  return math.min(task.retry_delay * 2 ^ (n - 1), task_fields.MAX_RETRY_DELAY)
end

---@class sloth.TaskLife
---@field reporter table
---@field ref string "group/task"
---@field store table the run's artifact store

--- Runs `task`; returns its result `{ status, message, outputs, attempts }` where status is
--- "succeeded", "failed", "skipped" (run_if) or "aborted" (abort_if).
---@param life sloth.TaskLife
function M.run(task, deps, workdir, life)
  -- The conditions' params, made only when there is a condition to call.
  local params = (task.abort_if or task.run_if) and execute.params(task, workdir)
  if task.abort_if then
    local yes, err = condition("abort_if", task.abort_if, params, deps, workdir)
    if err then
      return { status = "failed", message = err, outputs = {} }
    elseif yes then
      return { status = "aborted", message = "abort_if was true", outputs = {} }
    end
  end
  if task.run_if then
    local yes, err = condition("run_if", task.run_if, params, deps, workdir)
    if err then
      return { status = "failed", message = err, outputs = {} }
    elseif not yes then
      return { status = "skipped", message = "run_if was false", outputs = {} }
    end
  end
  if #task.consumes > 0 then
    local ok, err = artifacts.restore(life.store, task, workdir)
    if not ok then
      return { status = "failed", message = err, outputs = {} }
    end
  end

  local total = task.retries + 1
  local ok, message, outputs, n
  -- What a dispatch policy learns about earlier attempts; a local task has no policy.
  local info = task.remote and { number = 1, failures = {} }
  for i = 1, total do
    n = i
    if info then
      info.number = i
    end
    ok, message, outputs = attempt(task, deps, workdir, info)
    if ok then
      break
    end
    if i < total then
      local delay = backoff(task, i)
      life.reporter.retrying(life.ref, i, total, message, delay)
      core.sleep(delay)
    end
  end
  if ok and #task.artifacts > 0 then
    local saved, err = artifacts.save(life.store, task, workdir)
    if not saved then
      ok, message = false, err
    end
  end
  return { status = ok and "succeeded" or "failed", message = message, outputs = outputs or {}, attempts = n,
    where = info and info.agent, sync = info and info.sync }
end

return M
