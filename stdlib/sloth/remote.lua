--- The master's side of a remote task: pack the workdir, send the task with the pipeline's
--- scripts, params, deps and values, show what the agent says as it says it, and apply the
--- changes that come back (after success, unless `workspace.sync_back` says otherwise).
local agent = require("agent")
local workspace = require("workspace")
local errors = require("sloth.errors")
local scripts = require("sloth.scripts")

local M = {}

local function describe(target)
  if target.name == target.address then
    return string.format("agent at %s", target.address)
  end
  return string.format("agent '%s' (%s)", target.name, target.address)
end

local strip_prefix = errors.clean

--- Runs `task` on its agent; returns `ok, message, outputs` like a local task.
---@param task table a normalized task with `remote = { name, address, token }`
---@param deps table<string, table>
---@param workdir string
function M.run(task, deps, workdir)
  local target = task.remote
  local token = target.token or os.getenv("SLOTH_AGENT_TOKEN")
  local connected, client = pcall(agent.connect, target.address, { token = token, tls = target.tls })
  if not connected then
    return false, describe(target) .. ": " .. strip_prefix(client)
  end

  local packed, archive = pcall(workspace.pack, workdir, { exclude = task.workspace.exclude })
  if not packed then
    return false, "packing the workspace " .. workdir .. ": " .. strip_prefix(archive)
  end
  local request = {
    group = task.group,
    task = task.name,
    pipeline = scripts.key(task.pipeline_file),
    scripts = scripts.loaded,
    params = task.params,
    deps = deps,
    values = values,
    workspace = archive,
  }
  local called, result = pcall(client.execute, client, request, { prefix = target.name .. "/" .. task.name })
  if not called then
    return false, describe(target) .. ": " .. strip_prefix(result)
  end

  local sync = task.workspace.sync_back
  if sync == "always" or (sync == "on_success" and result.ok) then
    local applied, report = pcall(workspace.apply, workdir, result.changes, { base = archive })
    if not applied then
      return false, "applying the changes from " .. describe(target) .. ": " .. strip_prefix(report)
    end
  end
  return result.ok, result.message, result.outputs
end

return M
