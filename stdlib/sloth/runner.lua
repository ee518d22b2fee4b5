--- The scheduler: runs a plan's groups one after another, and inside a group starts tasks in
--- declaration order as their dependencies succeed, up to `jobs` at once (`async` tasks do not
--- count). A failure skips everything that depends on it, transitively, and wakes the tasks
--- named in its `next_if_fail`; independent tasks go on. An `abort_if` that holds stops the
--- whole run: nothing new starts and running tasks are cancelled.
local core = require("sloth.core")
local task_life = require("sloth.task_life")
local workdirs = require("sloth.workdirs")

local M = {}

--- The job body: one task's life, in its own coroutine whose context is the task's.
local function task_job(task, deps, workdir, life)
  local started = core.now()
  local result = task_life.run(task, deps, workdir, life)
  result.duration = core.now() - started
  return result
end

--- Whether `task` must wait, or why it cannot run at all, given its dependencies' results.
local function dependency_state(task, results)
  local waiting = false
  for _, dep in ipairs(task.depends_on) do
    local result = results[dep]
    if result == nil then
      waiting = true
    elseif result.status == "failed" or result.status == "aborted" then
      return false, string.format("dependency '%s' failed", dep)
    elseif result.status == "skipped" then
      return false, string.format("dependency '%s' was skipped", dep)
    end
  end
  return waiting, nil
end

--- Runs one group's selected tasks; appends each result to `run.finished` as it ends.
local function run_group(step, workdir, opts, run)
  local group = step.group
  local reporter = opts.reporter
  local results = {} -- task name -> result
  local pending = {}
  for _, task in ipairs(step.tasks) do
    pending[#pending + 1] = task
  end
  local running = {} -- job id -> task
  local counted = 0 -- running tasks that count against `jobs`
  local jobs = opts.jobs or 1
  local triggered = {} -- handler name -> { [failed task] = failure info }

  local function ref(task)
    return group.name .. "/" .. task.name
  end

  local function record(task, result)
    result.ref = ref(task)
    result.group, result.task = group.name, task.name
    results[task.name] = result
    run.finished[#run.finished + 1] = result
  end

  local function skip(task, reason)
    record(task, { status = "skipped", message = reason, outputs = {}, duration = 0 })
    reporter.skipped(ref(task), reason)
  end

  local function start(task)
    local deps = {}
    for _, dep in ipairs(task.depends_on) do
      deps[dep] = results[dep].outputs
    end
    for failed, info in pairs(triggered[task.name] or {}) do
      deps[failed] = info
    end
    local context = { group = group.name, task = task.name, prefix = ref(task), workdir = workdir, env = task.env }
    reporter.started(ref(task))
    local life = { reporter = reporter, ref = ref(task), store = run.store }
    local id = core.spawn(task_job, context, task, deps, workdir, life)
    running[id] = task
    if not task.async then
      counted = counted + 1
    end
  end

  local function abort(task)
    run.aborted_by = ref(task)
    for id, other in pairs(running) do
      core.cancel(id)
      running[id] = nil
      local cancelled = { status = "failed", message = "cancelled: the run was aborted by " .. run.aborted_by, outputs = {}, duration = 0 }
      record(other, cancelled)
      reporter.finished(ref(other), cancelled)
    end
    counted = 0
    for _, other in ipairs(pending) do
      skip(other, "the run was aborted by " .. run.aborted_by)
    end
    pending = {}
  end

  while true do
    -- Start (or skip) what can be, earliest declared first, until nothing changes.
    local i = 1
    while i <= #pending and not run.aborted_by do
      local task = pending[i]
      local waiting, blocked_by = dependency_state(task, results)
      local dormant = group.handlers[task.name] and not triggered[task.name]
      if blocked_by then
        table.remove(pending, i)
        skip(task, blocked_by)
        i = 1 -- a skip can unblock (skip) earlier-declared dependents
      elseif not waiting and not dormant and (task.async or counted < jobs) then
        table.remove(pending, i)
        start(task)
        i = 1
      else
        i = i + 1
      end
    end
    if next(running) == nil then
      break
    end
    local ids = {}
    for id in pairs(running) do
      ids[#ids + 1] = id
    end
    local id, job_ok, result = core.wait_any(table.unpack(ids))
    local task = running[id]
    running[id] = nil
    if not task.async then
      counted = counted - 1
    end
    if not job_ok then
      -- The job itself broke (an engine bug): the task failed.
      result = { status = "failed", message = tostring(result), outputs = {}, duration = 0 }
    end
    record(task, result)
    reporter.finished(ref(task), result)
    if result.status == "aborted" then
      abort(task)
    elseif result.status == "failed" then
      for _, handler in ipairs(task.next_if_fail) do
        triggered[handler] = triggered[handler] or {}
        triggered[handler][task.name] = { failed = true, message = result.message, outputs = result.outputs }
      end
    end
  end

  -- Failure handlers nobody needed, and anything left waiting on them.
  for _, task in ipairs(pending) do
    local reason = group.handlers[task.name] and not triggered[task.name] and "no failure to handle"
      or "dependencies never finished"
    skip(task, reason)
  end
  return results
end

--- Runs a plan (see `sloth.plan`).
---@param plan { group: table, tasks: table[] }[]
---@param opts { jobs?: integer, workdir_of: fun(group: table): string, reporter: table, store: table }
---@return { ok: boolean, results: table[], by_group: table<string, table<string, table>>, elapsed: number, aborted_by: string? }
function M.run(plan, opts)
  local started = core.now()
  local run = { finished = {}, store = opts.store }
  local by_group = {}
  for _, step in ipairs(plan) do
    if run.aborted_by then
      for _, task in ipairs(step.tasks) do
        local reason = "the run was aborted by " .. run.aborted_by
        local result = { status = "skipped", message = reason, outputs = {}, duration = 0,
          ref = step.group.name .. "/" .. task.name, group = step.group.name, task = task.name }
        run.finished[#run.finished + 1] = result
        opts.reporter.skipped(result.ref, reason)
      end
    else
      local workdir, prepared = workdirs.prepare(step.group, opts.workdir_of(step.group))
      if not workdir then
        error(prepared, 0)
      end
      by_group[step.group.name] = run_group(step, workdir, opts, run)
      workdirs.finish(step.group, prepared, by_group[step.group.name], opts.reporter)
    end
  end
  local ok = run.aborted_by == nil
  for _, result in ipairs(run.finished) do
    if result.status == "failed" or result.status == "aborted" then
      ok = false
    end
  end
  return { ok = ok, results = run.finished, by_group = by_group, elapsed = core.now() - started, aborted_by = run.aborted_by }
end

return M
