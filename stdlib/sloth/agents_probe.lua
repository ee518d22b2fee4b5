--- `sloth-runner agents FILE`: every agent the pipeline declares, probed at once — reachable or
--- not and why, its version, labels, task slots, tasks in flight and round-trip time. A pool
--- (found through DNS) is resolved first and shows a row per member, or one row saying why it
--- resolved to nothing.
local agent = require("agent")
local core = require("sloth.core")
local discovery = require("sloth.agent_discovery")
local errors = require("sloth.errors")
local tables = require("sloth.tables")
local data = require("data")

local M = {}

--- How long a probe may take to connect.
local CONNECT_TIMEOUT = "3s"

--- The declared agents of `groups` (every group when empty), in group then name order.
local function declared(pipeline, groups)
  local wanted = nil
  if groups and #groups > 0 then
    wanted = {}
    for _, name in ipairs(groups) do
      wanted[name] = true
    end
  end
  local list = {}
  for _, group_name in ipairs(pipeline.group_names) do
    if not wanted or wanted[group_name] then
      local agents = pipeline.groups[group_name].agents or {}
      for _, name in ipairs(tables.sorted_keys(agents)) do
        list[#list + 1] = { group = group_name, agent = agents[name] }
      end
    end
  end
  return list
end

--- One agent's row.
local function probe(entry)
  local target = entry.agent
  local row = { group = entry.group, name = target.name, address = target.address, pool = target.pool, up = false }
  local started = core.now()
  local token = target.token or os.getenv("SLOTH_AGENT_TOKEN")
  local connected, client = pcall(agent.connect, target.address,
    { token = token, tls = target.tls, connect_timeout = CONNECT_TIMEOUT })
  if not connected then
    row.error = errors.clean(client)
    return row
  end
  local asked, info = pcall(client.info, client)
  if not asked then
    row.error = errors.clean(info)
    return row
  end
  row.up = true
  row.rtt_ms = math.floor((core.now() - started) * 10000 + 0.5) / 10
  row.version = info.version
  row.labels = info.labels
  row.max_tasks = info.max_tasks
  row.tasks_in_flight = info.tasks_in_flight
  return row
end

local function labels_text(labels)
  local parts = {}
  for i, key in ipairs(tables.sorted_keys(labels or {})) do
    parts[i] = key .. "=" .. tostring(labels[key])
  end
  return #parts > 0 and table.concat(parts, ",") or "-"
end

local function print_table(rows)
  local header = { "GROUP", "AGENT", "ADDRESS", "STATUS", "VERSION", "LABELS", "TASKS", "RTT" }
  local lines = { header }
  for _, row in ipairs(rows) do
    lines[#lines + 1] = {
      row.group, row.name, row.address, row.up and "up" or "down",
      row.version or "-", row.up and labels_text(row.labels) or "-",
      row.up and string.format("%d/%d", row.tasks_in_flight, row.max_tasks) or "-",
      row.rtt_ms and string.format("%.1fms", row.rtt_ms) or "-",
    }
  end
  io.stdout:write(tables.columns(lines), "\n")
  for _, row in ipairs(rows) do
    if row.pool and row.pool == row.name then
      io.stderr:write(string.format("%s: %s\n", row.group, row.error))
    elseif not row.up then
      io.stderr:write(string.format("%s/%s (%s): %s\n", row.group, row.name, row.address, row.error))
    end
  end
end

--- The row of a pool that resolved to nothing.
local function empty_pool(entry, problem)
  return { group = entry.group, name = entry.agent.name, address = entry.agent.discover, pool = entry.agent.name,
    up = false, error = problem }
end

--- Entries with each pool replaced by its members (pools resolved at once), and the rows of
--- pools that resolved to nothing, by their entry's position.
local function expand(entries)
  local jobs = {}
  for i, entry in ipairs(entries) do
    if discovery.is_pool(entry.agent) then
      jobs[i] = core.spawn(discovery.resolve, nil, entry.agent)
    end
  end
  local list = {}
  for i, entry in ipairs(entries) do
    if jobs[i] then
      local ok, members, err = core.wait(jobs[i])
      if ok and members then
        for _, member in ipairs(members) do
          list[#list + 1] = { group = entry.group, agent = member }
        end
      else
        list[#list + 1] = { group = entry.group, agent = entry.agent,
          failed = discovery.problem(entry.agent, ok and err or members) }
      end
    else
      list[#list + 1] = entry
    end
  end
  return list
end

--- Probes every declared agent at once; prints a table (or JSON); true when all answered.
---@param pipeline table a loaded pipeline
---@param opts { groups?: string[], output?: string }
function M.report(pipeline, opts)
  local entries = expand(declared(pipeline, opts.groups))
  local jobs = {}
  for i, entry in ipairs(entries) do
    if not entry.failed then
      jobs[i] = core.spawn(probe, nil, entry)
    end
  end
  local rows = {}
  local all_up = true
  for i, entry in ipairs(entries) do
    local row
    if entry.failed then
      row = empty_pool(entry, entry.failed)
    else
      local ok
      ok, row = core.wait(jobs[i])
      if not ok then
        row = { group = entry.group, name = entry.agent.name, address = entry.agent.address, up = false, error = tostring(row) }
      end
    end
    rows[i] = row
    all_up = all_up and row.up
  end
  if opts.output == "json" then
    io.stdout:write(assert(data.to_json({ v = 1, agents = rows })), "\n")
  elseif #rows == 0 then
    io.stdout:write("no agents declared\n")
  else
    print_table(rows)
  end
  return all_up
end

return M
