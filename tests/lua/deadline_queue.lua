-- deadline.wait with a queue clock: time a remote task waits for a slot at its agent is not
-- counted against its timeout (before, during or after the job's own time); without a wait
-- the limit holds as before.
local core = require("sloth.core")
local deadline = require("sloth.deadline")

-- A job that waits 0.3 s for a slot, then works 0.05 s: under a 0.15 s limit it finishes.
local queue = deadline.queue_clock()
local job = core.spawn(function()
  queue.set(true)
  core.sleep(0.3)
  queue.set(false)
  core.sleep(0.05)
  return "done"
end)
local stopped, job_ok, value = deadline.wait(job, 0.15, "timed out", queue)
assert(not stopped and job_ok and value == "done", "a queued job was stopped: " .. tostring(value))
assert(queue.waited() >= 0.29 and not queue.waiting(), "waited " .. queue.waited())

-- Two waits, work around them: the work alone still exceeding the limit stops the job, at the
-- limit plus the waits.
queue = deadline.queue_clock()
local started = core.now()
job = core.spawn(function()
  core.sleep(0.1)
  queue.set(true)
  core.sleep(0.2)
  queue.set(false)
  core.sleep(0.1)
  queue.set(true)
  core.sleep(0.2)
  queue.set(false)
  core.sleep(5)
  return "late"
end)
stopped = deadline.wait(job, 0.3, "timed out", queue)
local took = core.now() - started
assert(stopped, "the job outlived its limit")
assert(took >= 0.69 and took < 2, "stopped after " .. took .. " s, not at 0.3 s of work beside 0.4 s of waits")

-- Lua that never yields after a wait is stopped at the extended deadline, not the first one.
queue = deadline.queue_clock()
job = core.spawn(function()
  queue.set(true)
  core.sleep(0.3)
  queue.set(false)
  local t = os.clock()
  while os.clock() - t < 0.05 do
  end
  return "finished"
end)
stopped, job_ok, value = deadline.wait(job, 0.15, "timed out", queue)
assert(not stopped and job_ok and value == "finished", "stopped: " .. tostring(value))

-- No clock: the plain limit.
started = core.now()
job = core.spawn(function()
  core.sleep(5)
end)
stopped = deadline.wait(job, 0.1, "timed out")
assert(stopped and core.now() - started < 1)
