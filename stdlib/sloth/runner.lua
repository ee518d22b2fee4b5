--- The scheduler: runs a plan's groups one after another, and inside a group starts tasks in
--- declaration order as their dependencies succeed, up to `jobs` at once (`async` tasks do not
--- count). A failure skips everything that depends on it, transitively, and wakes the tasks
--- named in its `next_if_fail`; independent tasks go on. An `abort_if` that holds stops the
--- whole run: nothing new starts and running tasks are cancelled.
local core = require("sloth.core")
local graph = require("sloth.graph")
local heap = require("sloth.heap")
local preempt = require("sloth.preempt")
local task_life = require("sloth.task_life")
local workdirs = require("sloth.workdirs")

local M = {}

--- What a task nobody depends on iterates over (never modified).
local NONE = {}

--- The job body: one task's life, in its own coroutine whose context is the task's.
local function task_job(task, deps, workdir, life)
  local started = core.now()
  local result = task_life.run(task, deps, workdir, life)
  result.duration = core.now() - started
  return result
end

--- Runs one group's selected tasks; appends each result to `run.finished` as it ends.
---
--- Linear in tasks and dependencies: each task counts its dependencies that have not yet
--- succeeded; a result updates only the tasks that depend on it. Of the tasks that can be acted
--- on — started (dependencies met, a job free or `async`) or skipped (a dependency failed or was
--- skipped) — the earliest declared always goes first, as a one-at-a-time run reads the file.
local function run_group(step, workdir, opts, run)
  local group = step.group
  local reporter = opts.reporter
  local tasks = step.tasks
  local results = {} -- task name -> result
  local index = {} -- task name -> position in `tasks`
  local dependents = {} -- task name -> positions of the selected tasks that depend on it
  local unmet = {} -- position -> dependencies not yet succeeded
  local state = {} -- position -> "waiting" | "ready" | "blocked" | "started" | "done"
  local reason = {} -- position -> why it cannot run (when blocked)
  local blocked, ready_sync, ready_async = heap.new(), heap.new(), heap.new()
  local running = {} -- job id -> task
  local counted = 0 -- running tasks that count against `jobs`
  local jobs = opts.jobs or 1
  local triggered = {} -- handler name -> { [failed task] = failure info }

  local refs = {} -- task -> "group/task", made once
  local function ref(task)
    local text = refs[task]
    if not text then
      text = group.name .. "/" .. task.name
      refs[task] = text
    end
    return text
  end

  local function dormant(task)
    return group.handlers[task.name] and not triggered[task.name]
  end

  --- Queues position `i` to start, if nothing holds it back any more.
  local function maybe_ready(i)
    local task = tasks[i]
    if state[i] == "waiting" and unmet[i] == 0 and not dormant(task) then
      state[i] = "ready"
      if task.async then
        ready_async:push(i)
      else
        ready_sync:push(i)
      end
    end
  end

  local function block(i, why)
    if state[i] == "waiting" then
      state[i], reason[i] = "blocked", why
      blocked:push(i)
    end
  end

  for i, task in ipairs(tasks) do
    index[task.name] = i
  end
  unmet, dependents = graph.dependencies(tasks, index)
  for i in ipairs(tasks) do
    state[i] = "waiting"
    maybe_ready(i)
  end

  --- Records a result and passes it on to the tasks that depend on it.
  local function record(task, result)
    result.ref = ref(task)
    result.group, result.task = group.name, task.name
    results[task.name] = result
    run.finished[#run.finished + 1] = result
    local i = index[task.name]
    if i then
      state[i] = "done"
    end
    local status = result.status
    for _, d in ipairs(dependents[task.name] or NONE) do
      if status == "failed" or status == "aborted" then
        block(d, string.format("dependency '%s' failed", task.name))
      elseif status == "skipped" then
        block(d, string.format("dependency '%s' was skipped", task.name))
      else
        unmet[d] = unmet[d] - 1
        maybe_ready(d)
      end
    end
  end

  --- Why `task` cannot run: its first dependency, in the order it lists them, that failed or
  --- was skipped.
  local function blocked_by(task)
    for _, dep in ipairs(task.depends_on) do
      local result = results[dep]
      local status = result and result.status
      if status == "failed" or status == "aborted" then
        return string.format("dependency '%s' failed", dep)
      elseif status == "skipped" then
        return string.format("dependency '%s' was skipped", dep)
      end
    end
    return nil
  end

  local function skip(task, why)
    record(task, { status = "skipped", message = why, outputs = {}, duration = 0 })
    reporter.skipped(ref(task), why)
  end

  local function start(task)
    local deps = {}
    for _, dep in ipairs(task.depends_on) do
      deps[dep] = results[dep].outputs
    end
    for failed, info in pairs(triggered[task.name] or NONE) do
      deps[failed] = info
    end
    local context = { group = group.name, task = task.name, prefix = ref(task), workdir = workdir, env = task.env }
    reporter.started(ref(task))
    local life = { reporter = reporter, ref = ref(task), store = run.store }
    local id = core.spawn(task_job, context, task, deps, workdir, life)
    running[id] = task
    state[index[task.name]] = "started"
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
    for i, other in ipairs(tasks) do
      if state[i] ~= "started" and state[i] ~= "done" then
        skip(other, "the run was aborted by " .. run.aborted_by)
      end
    end
  end

  --- The smallest position in `queue` still in state `want` (stale entries dropped).
  local function first(queue, want)
    local top = queue:peek()
    while top and state[top] ~= want do
      queue:pop()
      top = queue:peek()
    end
    return top
  end

  local ids = {} -- the running jobs' ids, refilled before each wait
  while true do
    -- Start (or skip) what can be, earliest declared first, until nothing is left to do.
    while not run.aborted_by do
      local b = first(blocked, "blocked")
      local a = first(ready_async, "ready")
      local s = counted < jobs and first(ready_sync, "ready") or nil
      local pick = b
      if a and (not pick or a < pick) then
        pick = a
      end
      if s and (not pick or s < pick) then
        pick = s
      end
      if not pick then
        break
      end
      if pick == b then
        blocked:pop()
        skip(tasks[pick], blocked_by(tasks[pick]) or reason[pick])
      else
        (pick == a and ready_async or ready_sync):pop()
        start(tasks[pick])
      end
    end
    if next(running) == nil then
      break
    end
    local n = 0
    for id in pairs(running) do
      n = n + 1
      ids[n] = id
    end
    for i = n + 1, #ids do
      ids[i] = nil
    end
    local id, job_ok, result = core.wait_any(table.unpack(ids, 1, n))
    local task = running[id]
    running[id] = nil
    if not task.async then
      counted = counted - 1
    end
    if not job_ok then
      -- The job itself broke (an engine bug): the task failed.
      result = { status = "failed", message = tostring(result), outputs = {}, duration = 0 }
    end
    if result.status == "failed" then
      for _, handler in ipairs(task.next_if_fail) do
        triggered[handler] = triggered[handler] or {}
        triggered[handler][task.name] = { failed = true, message = result.message, outputs = result.outputs }
      end
    end
    record(task, result)
    reporter.finished(ref(task), result)
    if result.status == "aborted" then
      abort(task)
    elseif result.status == "failed" then
      for _, handler in ipairs(task.next_if_fail) do
        if index[handler] then
          maybe_ready(index[handler])
        end
      end
    end
  end

  -- Failure handlers nobody needed, and anything left waiting on them (each named for what it
  -- was left waiting on, not for the skips this makes).
  local left = {}
  for i, task in ipairs(tasks) do
    if state[i] == "waiting" then
      left[#left + 1] = { task, dormant(task) and "no failure to handle" or "dependencies never finished" }
    end
  end
  for _, item in ipairs(left) do
    skip(item[1], item[2])
  end
  return results
end

--- Runs a plan (see `sloth.plan`).
---@param plan { group: table, tasks: table[] }[]
---@param opts { jobs?: integer, workdir_of: fun(group: table): string, reporter: table, store: table }
---@return { ok: boolean, results: table[], by_group: table<string, table<string, table>>, elapsed: number, aborted_by: string? }
function M.run(plan, opts)
  core.begin_run()
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
      -- The scheduler calls none of the pipeline's code itself (its jobs do).
      by_group[step.group.name] = preempt.without(run_group, step, workdir, opts, run)
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
