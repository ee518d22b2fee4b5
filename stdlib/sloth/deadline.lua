--- A job bounded by a time: past it the job is stopped (what it awaits dropped, which kills
--- the processes it started) — the one way a task's `timeout` is kept, on the master and, for
--- a remote task, on its agent.
local core = require("sloth.core")

local M = {}

--- Waits for `job` at most `seconds`, stopping it then; Lua code that never yields is stopped
--- by the deadline, anything else by the timer. Returns whether it was stopped, then what
--- `core.wait` would have returned.
---@param job integer a job from `core.spawn`
---@param seconds number
---@param message string the error a stopped job's code sees
---@return boolean stopped, boolean job_ok, any ...
function M.wait(job, seconds, message)
  core.set_deadline(job, seconds, message)
  local timer = core.spawn(function()
    core.sleep(seconds)
  end)
  local first, job_ok, ok, text, outputs = core.wait_any(job, timer)
  if first == timer then
    core.cancel(job)
    return true, false
  end
  core.cancel(timer)
  return false, job_ok, ok, text, outputs
end

return M
