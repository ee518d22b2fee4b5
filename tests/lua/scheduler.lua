-- The linear scheduler against the rescanning one it replaced, on random pipelines: with one
-- job at a time, the same tasks start, finish and are skipped in the same order, for the same
-- reasons. And a 10,000-task pipeline runs in one pass.
local h = require("_helpers")

--- The old scheduler's decisions, simulated: rescan the pending tasks from the first after
--- every start or skip; one job at a time, each finishing before the next decision.
local function reference(tasks, handlers, fails)
  local events, results, triggered = {}, {}, {}
  -- The plan's order, as the old `graph.order` made it: repeatedly the earliest declared task
  -- whose dependencies are placed.
  local pending, placed, remaining = {}, {}, {}
  for _, task in ipairs(tasks) do
    remaining[#remaining + 1] = task
  end
  while #remaining > 0 do
    for i, task in ipairs(remaining) do
      local ready = true
      for _, dep in ipairs(task.depends_on or {}) do
        ready = ready and placed[dep]
      end
      if ready then
        placed[task.name] = true
        pending[#pending + 1] = table.remove(remaining, i)
        break
      end
    end
  end
  local function state(task)
    local waiting = false
    for _, dep in ipairs(task.depends_on or {}) do
      local status = results[dep]
      if status == nil then
        waiting = true
      elseif status == "failed" then
        return false, "dependency '" .. dep .. "' failed"
      elseif status == "skipped" then
        return false, "dependency '" .. dep .. "' was skipped"
      end
    end
    return waiting, nil
  end
  local running
  while true do
    local i = 1
    while i <= #pending do
      local task = pending[i]
      local waiting, blocked = state(task)
      local dormant = handlers[task.name] and not triggered[task.name]
      if blocked then
        table.remove(pending, i)
        results[task.name] = "skipped"
        events[#events + 1] = "skipped g/" .. task.name .. " (" .. blocked .. ")"
        i = 1
      elseif not waiting and not dormant and running == nil then
        table.remove(pending, i)
        running = task
        events[#events + 1] = "start g/" .. task.name
        i = 1
      else
        i = i + 1
      end
    end
    if running == nil then
      break
    end
    local status = fails[running.name] and "failed" or "succeeded"
    results[running.name] = status
    events[#events + 1] = status .. " g/" .. running.name
    if status == "failed" then
      for _, handler in ipairs(running.next_if_fail or {}) do
        triggered[handler] = true
      end
    end
    running = nil
  end
  for _, task in ipairs(pending) do
    local why = handlers[task.name] and not triggered[task.name] and "no failure to handle" or "dependencies never finished"
    events[#events + 1] = "skipped g/" .. task.name .. " (" .. why .. ")"
  end
  return events
end

--- A random pipeline: dependencies only on earlier-numbered tasks (no cycles), declared in
--- a shuffled order, some failing, some handling others' failures.
local function random_pipeline(seed)
  math.randomseed(seed)
  local n = math.random(1, 30)
  local specs, handlers, fails = {}, {}, {}
  for i = 1, n do
    local deps = {}
    for j = 1, i - 1 do
      if math.random() < 0.15 then
        deps[#deps + 1] = "t" .. j
      end
    end
    specs[i] = { name = "t" .. i, depends_on = deps }
    fails["t" .. i] = math.random() < 0.2
  end
  for i = 1, n do
    if math.random() < 0.15 then
      local handler = "t" .. math.random(1, n)
      if handler ~= specs[i].name then
        specs[i].next_if_fail = { handler }
        handlers[handler] = true
      end
    end
  end
  for i = n, 2, -1 do
    local j = math.random(1, i)
    specs[i], specs[j] = specs[j], specs[i]
  end
  return specs, handlers, fails
end

for seed = 1, 300 do
  local specs, handlers, fails = random_pipeline(seed)
  local tasks = {}
  for i, spec in ipairs(specs) do
    local failing = fails[spec.name]
    tasks[i] = { name = spec.name, depends_on = spec.depends_on, next_if_fail = spec.next_if_fail,
      command = function() return not failing, failing and "failed on purpose" or nil end }
  end
  local ok, summary, events = pcall(h.run, { g = { tasks = tasks } })
  if ok then
    -- The recorder does not carry skip reasons: add them from the results.
    local reasons = {}
    for _, result in ipairs(summary.results) do
      if result.status == "skipped" then
        reasons[result.ref] = result.message
      end
    end
    for i, event in ipairs(events) do
      local ref = event:match("^skipped (.*)$")
      if ref then
        events[i] = event .. " (" .. reasons[ref] .. ")"
      end
    end
    local expected = reference(specs, handlers, fails)
    assert(table.concat(events, "\n") == table.concat(expected, "\n"),
      "seed " .. seed .. ":\n--- engine\n" .. table.concat(events, "\n") .. "\n--- reference\n" .. table.concat(expected, "\n"))
  else
    -- A pipeline the validation refuses (a handler that is also a dependency cycle, …) is
    -- refused whatever the scheduler.
    assert(tostring(summary):find("g", 1, true), tostring(summary))
  end
end

-- 10,000 tasks: a chain whose middle task fails, beside a fan from one root.
local chain = {}
for i = 1, 10000 do
  chain[i] = { name = "c" .. i, depends_on = i > 1 and ("c" .. (i - 1)) or nil,
    command = function() return i ~= 5000 end }
end
local fan = { { name = "root", command = function() return true end } }
for i = 2, 10000 do
  fan[i] = { name = "f" .. i, depends_on = "root", command = function() return true end }
end
local summary = h.run({ chain = { tasks = chain }, fan = { tasks = fan } })
local counts = { succeeded = 0, failed = 0, skipped = 0 }
for _, result in ipairs(summary.results) do
  counts[result.status] = counts[result.status] + 1
end
assert(counts.succeeded == 4999 + 10000 and counts.failed == 1 and counts.skipped == 5000,
  string.format("%d succeeded, %d failed, %d skipped", counts.succeeded, counts.failed, counts.skipped))
assert(summary.by_group.chain.c5001.message == "dependency 'c5000' failed")
assert(summary.by_group.chain.c6000.message == "dependency 'c5999' was skipped")
