--- A job bounded by a time: past it the job is stopped (what it awaits dropped, which kills
--- the processes it started) — the one way a task's `timeout` is kept, on the master and, for
--- a remote task, on its agent.
local core = require("sloth.core")

local M = {}

--- The least a wait still going on is granted at a time (the timer then looks again).
local STEP = 0.05

--- Time a remote task spends waiting for one of its agent's slots, which its timeout does not
--- count: a task's timeout is for running it, and one queued behind others has not begun.
--- `set` is the call's `on_queue`.
---@return { set: fun(waiting: boolean), waited: fun(): number, waiting: fun(): boolean }
function M.queue_clock()
  local total, since = 0, nil
  local clock = {}
  function clock.set(waiting)
    if waiting and not since then
      since = core.now()
    elseif not waiting and since then
      total = total + (core.now() - since)
      since = nil
    end
  end
  function clock.waited()
    return total + (since and core.now() - since or 0)
  end
  function clock.waiting()
    return since ~= nil
  end
  return clock
end

--- Waits for `job` at most `seconds`, stopping it then; Lua code that never yields is stopped
--- by the deadline, anything else by the timer. Time `queue` (a `queue_clock`) counts is
--- added. Returns whether it was stopped, then what `core.wait` would have returned.
---@param job integer a job from `core.spawn`
---@param seconds number
---@param message string the error a stopped job's code sees
---@param queue? { waited: fun(): number, waiting: fun(): boolean }
---@return boolean stopped, boolean job_ok, any ...
function M.wait(job, seconds, message, queue)
  local started = core.now()
  core.set_deadline(job, seconds, message)
  local timer = core.spawn(function()
    core.sleep(seconds)
    local granted = 0
    while queue do
      local owed = queue.waited() - granted
      if owed <= 0 and not queue.waiting() then
        break
      end
      owed = math.max(owed, STEP)
      granted = granted + owed
      -- (The job's own deadline a moment later than the timer, which stops it: Lua of the job
      -- that runs as the wait ends, its on_queue, is not stopped in between.)
      core.set_deadline(job, owed + 1, message)
      core.sleep(owed)
    end
  end)
  local first, job_ok, ok, text, outputs = core.wait_any(job, timer)
  if first == timer then
    core.cancel(job)
    return true, false
  end
  core.cancel(timer)
  -- Ended past its time (its jobs stopped by the deadline, its own code carried on a moment):
  -- stopped, as if the timer had come first.
  if core.now() - started >= seconds + (queue and queue.waited() or 0) then
    return true, false
  end
  return false, job_ok, ok, text, outputs
end

return M
