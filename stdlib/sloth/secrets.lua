--- Agents' secrets stay with the master: what a pipeline says about how to reach its agents
--- (`token`, `tls`) is the master's business, and a task on one agent must not read the token
--- of another. On an agent, after the pipeline is loaded, every agent's `token` and `tls` are
--- removed — from `TaskDefinitions` as the pipeline wrote it and from the pipeline as read —
--- before the task runs. A token written literally in a pipeline still travels with its source:
--- `validate` warns about those.
local tables = require("sloth.tables")

local M = {}

local function scrub_connection(value)
  if type(value) == "table" then
    value.token = nil
    value.tls = nil
  end
end

--- Removes agents' tokens and TLS settings from a `TaskDefinitions` value, and from the
--- normalized `pipeline` read from it.
function M.scrub(defs, pipeline)
  if type(defs) == "table" then
    for _, group in pairs(defs) do
      if type(group) == "table" then
        if type(group.agents) == "table" then
          for _, agent in pairs(group.agents) do
            scrub_connection(agent)
          end
        end
        scrub_connection(group.delegate_to)
        if type(group.tasks) == "table" then
          for _, task in pairs(group.tasks) do
            if type(task) == "table" then
              scrub_connection(task.delegate_to)
            end
          end
        end
      end
    end
  end
  for _, group in pairs(pipeline and pipeline.groups or {}) do
    for _, agent in pairs(group.agents or {}) do
      scrub_connection(agent)
    end
    for _, task in ipairs(group.tasks or {}) do
      scrub_connection(task.remote)
      if task.remote and task.remote.candidates then
        for _, candidate in ipairs(task.remote.candidates) do
          scrub_connection(candidate)
        end
      end
    end
  end
end

--- Every `token = "…"` written literally in `sources` (path -> content), and every token taken
--- from `values`: such a token reaches every agent, with the pipeline's files or with the
--- values. `{ where = "file:line", how = … }`.
---@param sources table<string, string>
---@return { where: string, how: string }[]
function M.literal_tokens(sources)
  local found = {}
  for _, path in ipairs(tables.sorted_keys(sources)) do
    local line = 0
    for text in (sources[path] .. "\n"):gmatch("([^\n]*)\n") do
      line = line + 1
      local code = text:gsub("%-%-.*$", "")
      if code:find("token%s*=%s*[\"'%[]") then
        found[#found + 1] = { where = string.format("%s:%d", path, line), how = "written in the pipeline" }
      elseif code:find("token%s*=%s*values[%.%[]") then
        found[#found + 1] = { where = string.format("%s:%d", path, line), how = "taken from values" }
      end
    end
  end
  return found
end

return M
