--- The agent's side of a remote task, run in a VM of its own: unpack the workspace into the
--- task's private directory, load the pipeline from the scripts the master shipped, run the task
--- there — always here: an agent never re-dispatches what it was sent — and pack what it
--- changed.
local core = require("sloth.core")
local execute = require("sloth.execute")
local scripts = require("sloth.scripts")
local secrets = require("sloth.secrets")
local taskdefs = require("sloth.taskdefs")
local log = require("log")
local workspace = require("workspace")

local M = {}

-- What a task's Lua code prints goes to the master, which prints it as it is (on its stdout,
-- or on stderr when its stdout carries JSON): a function task says the same wherever it runs.
-- Not what the pipeline prints while it is read here: the master printed that when it read it.
-- (What the wrapper uses is its own: a task that redefines `tostring` does not change it.)
local raw_print, to_text, concat, pack = print, tostring, table.concat, table.pack
local forwarding = false
print = function(...)
  local parts = pack(...)
  for i = 1, parts.n do
    parts[i] = to_text(parts[i])
  end
  local text = concat(parts, "\t", 1, parts.n)
  if not (forwarding and core.print_to_master(text)) then
    raw_print(text)
  end
end

--- `req.root` is the task's private workspace: already built from the master's manifest and
--- the agent's cache (incremental sync; `req.base` is then that manifest), or to be extracted
--- from `req.workspace`, an archive.
---@param req { agent: string, group: string, task: string, pipeline: string, scripts: table<string, string>, params: table, deps: table, dir: string, root: string, workdir: string?, workspace: userdata?, base: userdata?, rules: userdata? }
---@return { ok: boolean, message: string?, outputs: table, changes: userdata }
function M.handle(req)
  local root = req.root
  if req.workspace then
    workspace.unpack(req.workspace, root)
  end
  scripts.shipped = req.scripts

  local pipeline = taskdefs.load(req.pipeline, { on_agent = true, only = { group = req.group, task = req.task } })
  -- No task here reads how the master reaches its agents.
  secrets.scrub(TaskDefinitions, pipeline)
  local group = pipeline.groups[req.group]
  local task = group and group.by_name[req.task]
  if not task then
    error(string.format("%s: no task '%s' in group '%s'", req.pipeline, req.task, req.group), 0)
  end
  task.params = req.params

  -- The rules that decide what comes back are those the master took its snapshot with (sent
  -- with an incremental workspace), or else fixed now, before the task runs: a task that adds
  -- a pattern to `.slothignore` must not make the files it matches look deleted.
  local rules = req.rules or workspace.rules(root, { exclude = task.workspace.exclude })
  local base = req.base or workspace.snapshot(root, { exclude = task.workspace.exclude })
  -- Where the task runs: its copy, or (`same_path`) the master's path showing that copy. What
  -- it changed is read from the copy itself.
  local workdir = req.workdir or root
  local context = { group = req.group, task = req.task, prefix = req.agent .. "/" .. req.task, workdir = workdir, env = task.env }
  forwarding = true
  local job_ok, ok, message, outputs = core.wait(core.spawn(execute.run_here, context, task, req.deps, workdir))
  forwarding = false
  if not job_ok then
    ok, message, outputs = false, tostring(ok), {}
  end
  -- Kept in memory while small; a large archive goes to a file in the task's directory.
  local changes = workspace.changes(root, base, { rules = rules, spill = req.dir })
  for _, item in ipairs(changes.skipped) do
    log.warn(string.format("'%s' is %s: not carried back to the master", item.path, item.kind))
  end
  return { ok = ok, message = message, outputs = outputs or {}, changes = changes }
end

return M
