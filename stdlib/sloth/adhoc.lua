--- `sloth-runner exec TARGET -- COMMAND`: one shell command on every agent TARGET selects,
--- without a pipeline of its own. The agents are those a pipeline declares, as the engine read
--- them (tokens, TLS); each gets the command as a pipeline's remote shell task is sent
--- (`remote.run_on`), with an empty workspace, or the current directory with `--sync`.
local core = require("sloth.core")
local discovery = require("sloth.agent_discovery")
local errors = require("sloth.errors")
local fields = require("sloth.agent_fields")
local fs = require("fs")
local pool = require("sloth.agent_pool")
local remote = require("sloth.remote")
local scripts = require("sloth.scripts")
local suggest = require("sloth.suggest")
local tables = require("sloth.tables")

local M = {}

--- The pipeline read when `-f` is not given and TARGET is not an address.
M.DEFAULT_FILE = "tasks.lua"

-- What the agents are sent: a pipeline of one group holding one shell task.
local GROUP, TASK = "exec", "exec"
local SCRIPT = "sloth-runner-exec.lua"

--- Whether `target` is an agent's address (`host:port`, `[::1]:port`, `https://…`) rather than
--- a name or a selector.
---@param target string
function M.is_address(target)
  return target:match("^https?://") ~= nil or target:match("^[^=*,%s]+:%d+$") ~= nil
end

local function named(agent, name)
  local copy = {}
  for k, v in pairs(agent) do
    copy[k] = v
  end
  copy.name = name
  return copy
end

--- Every agent `pipeline` declares, once, in name order. A name that several groups declare
--- for the same address and token is one agent; for different ones, each is `group/name`.
---@param pipeline table a loaded pipeline
---@return table[] agents `{ name, address, labels, token?, tls? }`
function M.declared(pipeline)
  local by_name, order = {}, {}
  for _, group_name in ipairs(pipeline.group_names) do
    local agents = pipeline.groups[group_name].agents or {}
    for _, name in ipairs(tables.sorted_keys(agents)) do
      if not by_name[name] then
        by_name[name] = {}
        order[#order + 1] = name
      end
      table.insert(by_name[name], { group = group_name, agent = agents[name] })
    end
  end
  local list = {}
  for _, name in ipairs(order) do
    local entries = by_name[name]
    local first = entries[1].agent
    local same = true
    for i = 2, #entries do
      local other = entries[i].agent
      same = same and other.address == first.address and other.token == first.token
    end
    if same then
      list[#list + 1] = named(first, name)
    else
      for _, entry in ipairs(entries) do
        list[#list + 1] = named(entry.agent, entry.group .. "/" .. name)
      end
    end
  end
  table.sort(list, function(a, b)
    return a.name < b.name
  end)
  return list
end

local function names_of(agents)
  local names = {}
  for i, agent in ipairs(agents) do
    names[i] = agent.name
  end
  return names
end

local function known_text(declared, file)
  if #declared == 0 then
    return file and (file .. " declares no agents") or "no pipeline file read (-f FILE)"
  end
  return "agents: " .. table.concat(names_of(declared), ", ")
end

--- The agents whose declared labels match `selector` (`label=value[,label=value]`).
local function by_labels(declared, selector, file)
  local wanted = {}
  for pair in selector:gmatch("[^,]+") do
    local key, value = pair:match("^%s*([^=%s]+)%s*=%s*(.-)%s*$")
    if not key then
      return nil, string.format("invalid target '%s': labels are selected as label=value[,label=value]", selector)
    end
    wanted[#wanted + 1] = { key = key, value = value }
  end
  local chosen = {}
  for _, agent in ipairs(declared) do
    local matches = true
    for _, label in ipairs(wanted) do
      local have = (agent.labels or {})[label.key]
      matches = matches and have ~= nil and tostring(have) == label.value
    end
    if matches then
      chosen[#chosen + 1] = agent
    end
  end
  if #chosen == 0 then
    return nil, string.format("no agent has the labels %s (%s)", selector, known_text(declared, file))
  end
  return chosen
end

--- The agents `target` selects among `declared` (see `M.declared`): `"*"` (all of them),
--- `label=value[,label=value]`, or names and addresses separated by commas — an address that
--- no declared agent has is used as it is. Nil and a message naming the culprit when a part
--- selects nothing.
---@param declared table[]
---@param target string
---@param file string? the pipeline read, for messages
---@return table[]? agents, string? problem
function M.select(declared, target, file)
  if target:find("=", 1, true) and not fields.discovery_url(target) then
    local chosen, problem = by_labels(declared, target, file)
    if not chosen then
      return nil, problem
    end
    return discovery.expand(chosen)
  end
  local chosen, seen = {}, {}
  local function add(agent)
    if not seen[agent.name] then
      seen[agent.name] = true
      chosen[#chosen + 1] = agent
    end
  end
  for part in target:gmatch("[^,]+") do
    part = part:match("^%s*(.-)%s*$")
    local found = false
    for _, agent in ipairs(declared) do
      if part == "*" or agent.name == part or (M.is_address(part) and agent.address == part) then
        add(agent)
        found = true
      end
    end
    if not found and fields.discovery_url(part) then
      -- A pool named by its URL alone: its members, as a declared pool's.
      add({ name = part, discover = part, labels = {} })
    elseif not found and M.is_address(part) then
      add({ name = part, address = part, labels = {} })
    elseif not found and part == "*" then
      return nil, string.format("\"*\" selects no agent: %s", known_text(declared, file))
    elseif not found then
      return nil, string.format("unknown target '%s': not a declared agent, \"*\", label=value nor an address host:port (%s)%s",
        part, known_text(declared, file), suggest.hint(part, names_of(declared)))
    end
  end
  if #chosen == 0 then
    return nil, string.format("target '%s' selects no agent (%s)", target, known_text(declared, file))
  end
  -- Pools (declared, or named by a discovery URL) stand for the agents DNS names now.
  return discovery.expand(chosen)
end

--- Runs the command on one agent; its row of the summary.
local function run_one(target, opts, workdir, source)
  local task = {
    name = TASK,
    group = GROUP,
    command = opts.command,
    params = {},
    pipeline_file = SCRIPT,
    workspace = { exclude = {}, sync_back = opts.sync and "on_success" or "never", setuid = false, same_path = false },
  }
  local started = core.now()
  local job = core.spawn(remote.run_on, nil, target, task, {}, workdir,
    { prefix = target.name, scripts = { [scripts.key(SCRIPT)] = source }, spawn_hint = false })
  local job_ok, ok, message, outputs
  if opts.timeout then
    local timer = core.spawn(function()
      core.sleep(opts.timeout)
    end)
    local first
    first, job_ok, ok, message, outputs = core.wait_any(job, timer)
    if first == timer then
      core.cancel(job)
      return { agent = target.name, status = "timed out", duration = core.now() - started,
        message = "timed out after " .. core.format_duration(opts.timeout) .. " (its processes were killed)" }
    end
    core.cancel(timer)
  else
    job_ok, ok, message, outputs = core.wait(job)
  end
  local row = { agent = target.name, duration = core.now() - started }
  if not job_ok then
    row.status, row.message = "failed", errors.clean(ok)
    return row
  end
  row.exit_code = type(outputs) == "table" and outputs.exit_code or nil
  if ok then
    row.status = "ok"
  elseif row.exit_code == nil and not pool.state(target).healthy then
    row.status = "unreachable"
  else
    row.status = "failed"
  end
  row.message = not ok and message or nil
  return row
end

local function print_summary(rows)
  local lines = { { "AGENT", "STATUS", "EXIT", "DURATION", "" } }
  for _, row in ipairs(rows) do
    lines[#lines + 1] = { row.agent, row.status, row.exit_code and tostring(row.exit_code) or "-",
      core.format_duration(row.duration), row.message and tostring(row.message):match("^[^\n]*") or "" }
  end
  io.stdout:write(tables.columns(lines), "\n")
end

--- Runs `opts.command` on every agent of `targets`, up to `opts.jobs` at once; prints the
--- summary; true when it succeeded everywhere.
---@param targets table[] agents, from `M.select`
---@param opts { command: string, sync?: boolean, jobs?: integer, timeout?: number }
---@return boolean
function M.run(targets, opts)
  local source = string.format("TaskDefinitions = { %s = { tasks = { { name = %q, command = %q } } } }\n",
    GROUP, TASK, opts.command)
  local workdir, temporary
  if opts.sync then
    workdir = core.cwd()
  else
    local dir, err = fs.tmpdir()
    if not dir then
      error("cannot create an empty workspace: " .. tostring(err), 0)
    end
    workdir, temporary = dir, dir
  end
  local jobs = math.max(1, opts.jobs or #targets)
  local rows, running, ids = {}, {}, {}
  local next_index = 1
  while next_index <= #targets or #ids > 0 do
    while #ids < jobs and next_index <= #targets do
      local target = targets[next_index]
      local context = { group = GROUP, task = target.name, prefix = target.name, workdir = workdir }
      local id = core.spawn(run_one, context, target, opts, workdir, source)
      running[id] = next_index
      ids[#ids + 1] = id
      next_index = next_index + 1
    end
    local id, job_ok, row = core.wait_any(table.unpack(ids))
    local index = running[id]
    if not job_ok then
      row = { agent = targets[index].name, status = "failed", duration = 0, message = errors.clean(row) }
    end
    rows[index] = row
    running[id] = nil
    for i, other in ipairs(ids) do
      if other == id then
        table.remove(ids, i)
        break
      end
    end
  end
  if temporary then
    fs.rm_r(temporary)
  end
  print_summary(rows)
  local all_ok = true
  for _, row in ipairs(rows) do
    all_ok = all_ok and row.status == "ok"
  end
  return all_ok
end

return M
