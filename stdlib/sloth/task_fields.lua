--- Reading the task fields that shape a task's life: retries and timeouts, conditions, hooks,
--- failure handlers, async, artifacts, and `uses` (a base task). Each reader validates and
--- reports problems through `add(field, problem)`.
local core = require("sloth.core")
local tables = require("sloth.tables")

local M = {}

--- The empty list of names a task gets for a list field it does not set; shared by every such
--- task, so never modified.
M.NO_NAMES = {}

--- Longest pause between attempts, whatever `retry_delay` and the attempt number say.
M.MAX_RETRY_DELAY = 60

--- A name or a list of names as a list; nil for anything else.
local function names(value)
  if type(value) == "string" then
    return { value }
  end
  return tables.is_list_of_strings(value) and value or nil
end
M.names = names

--- Seconds for a duration field ("100ms", "10s", "1m", "1h", or a number of seconds).
local function duration(add, field, value)
  if type(value) == "number" and value >= 0 then
    return value
  end
  if type(value) == "string" then
    local seconds, reason = core.parse_duration(value)
    if seconds then
      return seconds
    end
    add(field, string.format("invalid duration '%s': %s", value, reason))
    return nil
  end
  add(field, "must be a duration such as \"100ms\", \"10s\" or \"1m\", got " .. type(value))
  return nil
end
M.duration = duration

local function condition(add, field, value)
  if type(value) == "string" or type(value) == "function" then
    return value
  end
  add(field, "must be a shell command (exit 0 = true) or a function(params, deps), got " .. type(value))
  return nil
end

local function hook(add, field, value)
  if type(value) == "function" then
    return value
  end
  add(field, "must be a function returning ok, msg, got " .. type(value))
  return nil
end

local LIST_FIELDS = { "artifacts", "consumes" }

--- Reads the lifecycle fields of `raw` into `task`.
---@param add fun(field: string, problem: string)
function M.read(add, raw, task)
  task.retries = 0
  if raw.retries ~= nil then
    if math.type(raw.retries) == "integer" and raw.retries >= 0 then
      task.retries = raw.retries
    else
      add("retries", "must be a non-negative integer (extra attempts), got " .. tostring(raw.retries))
    end
  end
  task.retry_delay = 1
  if raw.retry_delay ~= nil then
    task.retry_delay = duration(add, "retry_delay", raw.retry_delay) or 1
  end
  if raw.timeout ~= nil then
    task.timeout = duration(add, "timeout", raw.timeout)
  end
  if raw.run_if ~= nil then
    task.run_if = condition(add, "run_if", raw.run_if)
  end
  if raw.abort_if ~= nil then
    task.abort_if = condition(add, "abort_if", raw.abort_if)
  end
  if raw.pre_exec ~= nil then
    task.pre_exec = hook(add, "pre_exec", raw.pre_exec)
  end
  if raw.post_exec ~= nil then
    task.post_exec = hook(add, "post_exec", raw.post_exec)
  end
  task.next_if_fail = M.NO_NAMES
  if raw.next_if_fail ~= nil then
    task.next_if_fail = names(raw.next_if_fail) or M.NO_NAMES
    if not names(raw.next_if_fail) then
      add("next_if_fail", "must be a task name or a list of task names")
    end
  end
  task.async = false
  if raw.async ~= nil then
    if type(raw.async) == "boolean" then
      task.async = raw.async
    else
      add("async", "must be a boolean, got " .. type(raw.async))
    end
  end
  for _, field in ipairs(LIST_FIELDS) do
    task[field] = M.NO_NAMES
    if raw[field] ~= nil then
      local list = names(raw[field])
      if list then
        task[field] = list
      else
        add(field, "must be a name (or glob) or a list of them")
      end
    end
  end
end

--- The task table `raw` with its `uses` base applied: every local field overrides the base's,
--- `params` merged key by key. Bases may have bases. Returns the merged table, or nil and a
--- problem.
---@param raw table
---@return table? merged, string? problem
function M.apply_uses(raw, depth)
  depth = depth or 0
  if raw.uses == nil then
    return raw
  end
  if type(raw.uses) ~= "table" then
    return nil, "must be a task table (for example from import), got " .. type(raw.uses)
  end
  if depth > 16 then
    return nil, "chains more than 16 bases (a loop?)"
  end
  local base, problem = M.apply_uses(raw.uses, depth + 1)
  if not base then
    return nil, problem
  end
  local merged = {}
  for k, v in pairs(base) do
    merged[k] = v
  end
  for k, v in pairs(raw) do
    merged[k] = v
  end
  merged.uses = nil
  if type(base.params) == "table" and type(raw.params) == "table" then
    local params = {}
    for k, v in pairs(base.params) do
      params[k] = v
    end
    for k, v in pairs(raw.params) do
      params[k] = v
    end
    merged.params = params
  end
  return merged
end

return M
