--- The agent's side of a remote task: unpack the workspace into the task's private directory,
--- load the pipeline from the scripts the master shipped (or find it read already: below), run
--- the task there — always here: an agent never re-dispatches what it was sent — and pack what
--- it changed.
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

-- The pipeline this VM read, by key (master, run, sources, values). The agent gives this VM
-- another task of that key only if no Lua of the pipeline ran here since it was read (the last
-- task was a shell command without hooks: `reusable` below), so the pipeline is exactly as a
-- fresh read would leave it — read once per run, as on the master.
local loaded = { key = nil, defs = nil }

--- `req.root` is the task's private workspace: already built from the master's manifest and
--- the agent's cache (incremental sync; `req.base` is then that manifest), or to be extracted
--- from `req.workspace`, an archive.
--- `req.key` names the pipeline; `req.scripts` is absent when this VM read it already.
---@param req { agent: string, group: string, task: string, pipeline: string, key: string?, scripts: table<string, string>?, params: table, deps: table, dir: string, root: string, workdir: string?, workspace: userdata?, base: userdata?, rules: userdata? }
---@return { ok: boolean, message: string?, outputs: table, changes: userdata, reusable: boolean }
function M.handle(req)
  local root = req.root
  if req.workspace then
    workspace.unpack(req.workspace, root)
  end
  local read = { on_agent = true, only = { group = req.group, task = req.task } }
  local pipeline
  if req.key ~= nil and loaded.key == req.key then
    pipeline = taskdefs.from_value(loaded.defs, req.pipeline, read)
  else
    scripts.shipped = req.scripts
    loaded.key, loaded.defs = nil, nil
    pipeline = taskdefs.load(req.pipeline, read)
    loaded.key, loaded.defs = req.key, TaskDefinitions
  end
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
  -- Nothing of the pipeline ran: a shell command, no hooks (what the master evaluates —
  -- conditions, dispatch — never runs here).
  local reusable = job_ok and type(task.command) == "string" and task.pre_exec == nil and task.post_exec == nil
  return { ok = ok, message = message, outputs = outputs or {}, changes = changes, reusable = reusable }
end

return M
