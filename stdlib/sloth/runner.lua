--- The scheduler: runs a plan's groups one after another, and inside a group starts tasks in
--- declaration order as their dependencies succeed, up to `jobs` at once. A failure skips
--- everything that depends on it, transitively; independent tasks go on.
local core = require("sloth.core")
local execute = require("sloth.execute")

local M = {}

--- The job body: runs in its own coroutine, whose context is the task's.
local function task_job(task, deps, workdir)
  local started = core.now()
  local ok, message, outputs = execute.run(task, deps, workdir)
  return {
    status = ok and "succeeded" or "failed",
    message = message,
    outputs = outputs or {},
    duration = core.now() - started,
  }
end

--- Why `task` cannot run because of its dependencies, or nil; and whether it must still wait.
local function dependency_state(task, results)
  local waiting = false
  for _, dep in ipairs(task.depends_on) do
    local result = results[dep]
    if result == nil then
      waiting = true
    elseif result.status == "failed" then
      return false, string.format("dependency '%s' failed", dep)
    elseif result.status == "skipped" then
      return false, string.format("dependency '%s' was skipped", dep)
    end
  end
  return waiting, nil
end

--- Runs one group's selected tasks; appends each result to `finished` as it ends.
local function run_group(step, opts, reporter, finished)
  local group = step.group
  local workdir = opts.workdir_of(group)
  local results = {} -- task name -> result
  local pending = {}
  for _, task in ipairs(step.tasks) do
    pending[#pending + 1] = task
  end
  local running = {} -- job id -> task
  local running_count = 0
  local jobs = opts.jobs or 1

  local function record(task, result)
    result.ref = group.name .. "/" .. task.name
    result.group, result.task = group.name, task.name
    results[task.name] = result
    finished[#finished + 1] = result
  end

  while true do
    -- Start (or skip) what can be, earliest declared first, until nothing changes.
    local i = 1
    while i <= #pending do
      local task = pending[i]
      local waiting, blocked_by = dependency_state(task, results)
      if blocked_by then
        table.remove(pending, i)
        record(task, { status = "skipped", message = blocked_by, outputs = {}, duration = 0 })
        reporter.skipped(group.name .. "/" .. task.name, blocked_by)
        i = 1 -- a skip can unblock (skip) earlier-declared dependents
      elseif not waiting and running_count < jobs then
        table.remove(pending, i)
        local deps = {}
        for _, dep in ipairs(task.depends_on) do
          deps[dep] = results[dep].outputs
        end
        local ref = group.name .. "/" .. task.name
        local context = { group = group.name, task = task.name, prefix = ref, workdir = workdir, env = task.env }
        reporter.started(ref)
        local id = core.spawn(task_job, context, task, deps, workdir)
        running[id] = task
        running_count = running_count + 1
        i = 1
      else
        i = i + 1
      end
    end
    if running_count == 0 then
      break
    end
    local ids = {}
    for id in pairs(running) do
      ids[#ids + 1] = id
    end
    local id, ok, result = core.wait_any(table.unpack(ids))
    local task = running[id]
    running[id] = nil
    running_count = running_count - 1
    if not ok then
      -- The job itself broke (an engine bug or a cancelled coroutine): the task failed.
      result = { status = "failed", message = tostring(result), outputs = {}, duration = 0 }
    end
    record(task, result)
    reporter.finished(result.ref, result)
  end

  -- Whatever is left pending waits on something that never finished (cannot happen with a
  -- validated graph, but never lose a task silently).
  for _, task in ipairs(pending) do
    record(task, { status = "skipped", message = "dependencies never finished", outputs = {}, duration = 0 })
  end
  return results
end

--- Runs a plan (see `sloth.plan`).
---@param plan { group: table, tasks: table[] }[]
---@param opts { jobs?: integer, workdir_of: fun(group: table): string, reporter: table }
---@return { ok: boolean, results: table[], by_group: table<string, table<string, table>>, elapsed: number }
function M.run(plan, opts)
  local started = core.now()
  local finished = {}
  local by_group = {}
  for _, step in ipairs(plan) do
    by_group[step.group.name] = run_group(step, opts, opts.reporter, finished)
  end
  local ok = true
  for _, result in ipairs(finished) do
    if result.status == "failed" then
      ok = false
    end
  end
  return { ok = ok, results = finished, by_group = by_group, elapsed = core.now() - started }
end

return M
