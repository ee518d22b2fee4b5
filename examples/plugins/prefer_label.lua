-- A sample dispatch plugin: prefer healthy agents whose labels match the task's
-- `params.prefer` (e.g. { tier = "gpu" }), the least busy of them; otherwise any healthy agent.
-- Pipelines use it with `dispatch = "prefer_label"` (found in the pipeline's plugins/ dir).
local M = { name = "prefer_label" }

local function matches(candidate, wanted)
  for key, value in pairs(wanted or {}) do
    if candidate.labels[key] ~= value then
      return false
    end
  end
  return true
end

---@param ctx sloth.DispatchContext
function M.select(ctx)
  local best
  for _, candidate in ipairs(ctx.candidates) do
    if candidate.healthy and matches(candidate, ctx.task.params.prefer) then
      if best == nil or candidate.in_flight < best.in_flight then
        best = candidate
      end
    end
  end
  if best then
    return best.name
  end
  for _, candidate in ipairs(ctx.candidates) do
    if candidate.healthy then
      return candidate.name
    end
  end
  return ctx.candidates[1].name
end

return M
