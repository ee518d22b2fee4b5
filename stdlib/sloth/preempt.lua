--- Calls into the pipeline's code with the running coroutine preemptible (a deadline or a
--- cancellation stops Lua code that never yields), and the engine's own stretches without that
--- cost. An entry point's coroutine is preemptible from the start; a job's is not until it
--- calls the pipeline's code through here. (See src/runtime/preempt.rs.)
local core = require("sloth.core")

local M = {}

local function restore(was_on, ...)
  if not was_on then
    core.preempt(false)
  end
  return ...
end

--- `xpcall(fn, handler, ...)`, preemptible while `fn` runs (Lua's own: a stop is caught here,
--- where the engine reports it; see `sloth.prelude`).
function M.xpcall(fn, handler, ...)
  local was_on = core.preempt(true)
  return restore(was_on, (core.raw_xpcall or xpcall)(fn, handler, ...))
end

--- `pcall(fn, ...)`, preemptible while `fn` runs (Lua's own, as `M.xpcall`).
function M.pcall(fn, ...)
  local was_on = core.preempt(true)
  return restore(was_on, (core.raw_pcall or pcall)(fn, ...))
end

local function rethrow(was_on, ok, ...)
  if was_on then
    core.preempt(true)
  end
  if not ok then
    error((...), 0)
  end
  return ...
end

--- `fn(...)` — the engine's code, calling none of the pipeline's — without the hook; errors
--- pass through.
function M.without(fn, ...)
  local was_on = core.preempt(false)
  return rethrow(was_on, pcall(fn, ...))
end

return M
