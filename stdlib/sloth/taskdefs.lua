--- Reading and validating a pipeline's `TaskDefinitions`.
---
--- `load(file)` runs the pipeline file and returns the normalized pipeline; anything wrong
--- raises one validation error listing every problem, each naming file, group, task and field.
local errors = require("sloth.errors")
local graph = require("sloth.graph")
local paths = require("sloth.paths")
local core = require("sloth.core")
local scripts = require("sloth.scripts")
local task_fields = require("sloth.task_fields")
local dispatch = require("sloth.dispatch")
local agent_fields = require("sloth.agent_fields")
local tables = require("sloth.tables")
local suggest = require("sloth.suggest")
local handlers = require("sloth.handlers")
local fs = require("fs")

local M = {}

--- Task fields of the language, and whether this version acts on them. A field the language
--- has but this version does not handle is refused, never silently ignored.
M.TASK_FIELDS = {
  name = true, description = true, command = true, params = true, depends_on = true, env = true,
  agent = true, delegate_to = true, workspace = true,
  async = true, retries = true, retry_delay = true, timeout = true,
  run_if = true, abort_if = true, pre_exec = true, post_exec = true, next_if_fail = true,
  uses = true, artifacts = true, consumes = true,
}

M.GROUP_FIELDS = {
  description = true, tasks = true, workdir = true, agents = true, delegate_to = true,
  create_workdir_before_run = true, clean_workdir_after_run = true,
  dispatch = true,
  -- The Go tool's pipelines set it and the Go tool ignored it: accepted with a warning.
  execution_mode = true,
}

--- Group fields accepted for pipelines written for the Go tool, with the warning they give:
--- they do nothing here, and saying so beats refusing a pipeline that ran there.
M.INERT_GROUP_FIELDS = {
  execution_mode = "has no effect in sloth-runner (tasks run in dependency order; use --jobs N to run independent tasks at once)",
}


local SYNC_BACK = { on_success = true, always = true, never = true }

local sorted_keys = tables.sorted_keys
local is_list_of_strings = tables.is_list_of_strings

--- Where a field of a task or of a group is (the `where` of `known_fields`).
local function task_field(field, group, task)
  return { group = group, task = task, field = field }
end
local function group_field(field, group)
  return { group = group, field = field }
end

--- Defaults shared by every task that does not set the field: never modified (a task that
--- sets one gets its own table), so 100,000 tasks do not make 100,000 empty tables each.
local NO_NAMES = task_fields.NO_NAMES
local NO_ENV = {}
--- A task's `workspace` fields.
M.WORKSPACE_FIELDS = { exclude = true, sync_back = true, setuid = true, same_path = true }

local DEFAULT_WORKSPACE = { sync_back = "on_success", exclude = NO_NAMES, setuid = false, same_path = false }

--- A validation pass over one pipeline: collects problems instead of stopping at the first.
local Checker = {}
Checker.__index = Checker

local function new_checker(file, opts)
  local checker = setmetatable({ file = file, problems = {}, warnings = {}, opts = opts or {} }, Checker)
  --- `add(field, problem)` for the task being read (`at_group`, `at_task`).
  checker.add_task_problem = function(field, problem)
    checker:add(task_field(field, checker.at_group, checker.at_task), problem)
  end
  return checker
end

function Checker:add(where, problem)
  where.file = self.file
  self.problems[#self.problems + 1] = errors.locate(where, problem)
end

--- Something accepted that the user should know about; does not stop the run.
function Checker:warn(where, message)
  where.file = self.file
  self.warnings[#self.warnings + 1] = errors.locate(where, message)
end

--- Reports every key of `raw` that `known` does not list (or lists as false: a field of the
--- language this version does not handle). `where(field, ...)` locates a field (the extra
--- arguments spare a closure per table read).
function Checker:known_fields(raw, known, where, ...)
  -- Sorted only when there is something to report (in a stable order).
  local odd
  for field in pairs(raw) do
    if not known[field] then
      odd = odd or {}
      odd[field] = true
    end
  end
  if not odd then
    return
  end
  local fields = {}
  for name, handled in pairs(known) do
    if handled then
      fields[#fields + 1] = name
    end
  end
  table.sort(fields)
  for _, field in ipairs(sorted_keys(odd)) do
    if known[field] == nil then
      self:add(where(tostring(field), ...), "unknown field" .. suggest.hint(field, fields))
    else
      self:add(where(tostring(field), ...), "is not supported by this version of sloth-runner")
    end
  end
end

--- Reads one task table into its normalized form.
function Checker:task(group_name, raw, position, key_name)
  local where_task = key_name or (type(raw) == "table" and type(raw.name) == "string" and raw.name) or position
  if type(raw) ~= "table" then
    self:add({ group = group_name, task = where_task }, "must be a table, got " .. type(raw))
    return nil
  end
  local task = { index = position, group = group_name, env = NO_ENV, depends_on = NO_NAMES, pipeline_file = self.file }
  local merged, uses_problem = task_fields.apply_uses(raw)
  if not merged then
    self:add({ group = group_name, task = where_task, field = "uses" }, uses_problem)
    return nil
  end
  raw = merged
  self:known_fields(raw, M.TASK_FIELDS, task_field, group_name, where_task)

  local name = raw.name
  if key_name ~= nil then
    if name ~= nil and name ~= key_name then
      self:add({ group = group_name, task = key_name, field = "name" },
        string.format("'%s' differs from the key '%s' it is stored under", tostring(name), key_name))
    end
    name = key_name
  end
  if type(name) ~= "string" or name == "" then
    self:add({ group = group_name, task = where_task, field = "name" },
      name == nil and "is missing" or "must be a non-empty string, got " .. type(name))
    return nil
  end
  task.name = name
  -- Problems of this task's fields, reported through one closure per checker.
  self.at_group, self.at_task = group_name, name

  if raw.description ~= nil and type(raw.description) ~= "string" then
    self:add(task_field("description", group_name, name), "must be a string, got " .. type(raw.description))
  end
  task.description = raw.description

  local command = raw.command
  if command == nil then
    self:add(task_field("command", group_name, name), "is missing (a shell string or a function)")
  elseif type(command) ~= "string" and type(command) ~= "function" then
    self:add(task_field("command", group_name, name), "must be a shell string or a function, got " .. type(command))
  end
  task.command = command

  if raw.params ~= nil and type(raw.params) ~= "table" then
    self:add(task_field("params", group_name, name), "must be a table, got " .. type(raw.params))
  end
  task.params = raw.params or {}

  local deps = raw.depends_on
  if type(deps) == "string" then
    task.depends_on = { deps }
  elseif deps ~= nil then
    if is_list_of_strings(deps) then
      task.depends_on = deps
    else
      self:add(task_field("depends_on", group_name, name), "must be a task name or a list of task names")
    end
  end

  task_fields.read(self.add_task_problem, raw, task)

  task.agent = raw.agent
  if raw.agent ~= nil and type(raw.agent) ~= "string" and not is_list_of_strings(raw.agent)
    and not (type(raw.agent) == "table" and type(raw.agent.labels) == "table") then
    self:add(task_field("agent", group_name, name), "must be an agent name, a list of names, \"*\" or { labels = { key = \"value\" } }")
  end
  if raw.delegate_to ~= nil then
    task.delegate_to = agent_fields.delegate(self, task_field("delegate_to", group_name, name), raw.delegate_to)
  end
  task.workspace = DEFAULT_WORKSPACE
  if raw.workspace ~= nil then
    task.workspace = { sync_back = "on_success", exclude = NO_NAMES, setuid = false, same_path = false }
    if type(raw.workspace) ~= "table" then
      self:add(task_field("workspace", group_name, name), "must be a table { exclude = {globs}, sync_back = ..., setuid = bool, same_path = bool }, got " .. type(raw.workspace))
    else
      for key, value in pairs(raw.workspace) do
        if key == "exclude" then
          if is_list_of_strings(value) then
            task.workspace.exclude = value
          else
            self:add(task_field("workspace.exclude", group_name, name), "must be a list of glob strings")
          end
        elseif key == "sync_back" then
          if SYNC_BACK[value] then
            task.workspace.sync_back = value
          else
            self:add(task_field("workspace.sync_back", group_name, name), string.format(
              "must be \"on_success\", \"always\" or \"never\", got %s", tostring(value)))
          end
        elseif key == "setuid" or key == "same_path" then
          if type(value) == "boolean" then
            task.workspace[key] = value
          else
            self:add(task_field("workspace." .. key, group_name, name), "must be true or false, got " .. type(value))
          end
        else
          self:add(task_field("workspace." .. tostring(key), group_name, name),
            "unknown field" .. suggest.hint(key, M.WORKSPACE_FIELDS))
        end
      end
    end
  end

  if raw.env ~= nil then
    if type(raw.env) ~= "table" then
      self:add(task_field("env", group_name, name), "must be a table of NAME = value, got " .. type(raw.env))
    else
      task.env = {}
      for k, v in pairs(raw.env) do
        local tv = type(v)
        if type(k) ~= "string" or (tv ~= "string" and tv ~= "number" and tv ~= "boolean") then
          self:add(task_field("env", group_name, name), string.format("entry '%s' must map a name to a string, number or boolean", tostring(k)))
        else
          task.env[k] = tostring(v)
        end
      end
    end
  end
  return task
end

function Checker:group(name, raw, base_dir)
  if type(name) ~= "string" then
    self:add({}, string.format("group keys must be strings, got %s", type(name)))
    return nil
  end
  if type(raw) ~= "table" then
    self:add({ group = name }, "must be a table, got " .. type(raw))
    return nil
  end
  self:known_fields(raw, M.GROUP_FIELDS, group_field, name)
  for _, field in ipairs(sorted_keys(M.INERT_GROUP_FIELDS)) do
    if raw[field] ~= nil and not self.opts.on_agent then
      self:warn({ group = name, field = field }, M.INERT_GROUP_FIELDS[field])
    end
  end
  local group = { name = name, description = raw.description, tasks = {}, by_name = {}, agents = {} }
  if raw.description ~= nil and type(raw.description) ~= "string" then
    self:add({ group = name, field = "description" }, "must be a string, got " .. type(raw.description))
  end
  if raw.agents ~= nil then
    group.agents = agent_fields.agents(self, name, raw.agents)
  end

  if raw.workdir ~= nil then
    if type(raw.workdir) ~= "string" then
      self:add({ group = name, field = "workdir" }, "must be a string, got " .. type(raw.workdir))
    else
      group.workdir = paths.absolute(raw.workdir, base_dir)
      -- A missing one is created when the group runs (sloth.workdirs), as the Go tool did;
      -- something else in its place cannot become a directory.
      if not self.opts.on_agent and not core.is_dir(group.workdir) and fs.exists(group.workdir) then
        self:add({ group = name, field = "workdir" }, "exists and is not a directory: " .. group.workdir)
      end
    end
  end

  if raw.create_workdir_before_run ~= nil then
    if type(raw.create_workdir_before_run) ~= "boolean" then
      self:add({ group = name, field = "create_workdir_before_run" }, "must be a boolean")
    end
    group.create_workdir = raw.create_workdir_before_run == true
  end
  if raw.clean_workdir_after_run ~= nil then
    if type(raw.clean_workdir_after_run) ~= "function" then
      self:add({ group = name, field = "clean_workdir_after_run" }, "must be a function(result) returning a boolean")
    else
      group.clean_workdir = raw.clean_workdir_after_run
    end
  end

  local tasks = raw.tasks
  if tasks == nil then
    self:add({ group = name, field = "tasks" }, "is missing")
    return group
  elseif type(tasks) ~= "table" then
    self:add({ group = name, field = "tasks" }, "must be a list or a map of tasks, got " .. type(tasks))
    return group
  end

  -- A list keeps declaration order; a map (name = task) has none, so it runs in name order.
  -- The entries as parallel lists (no table per task): raw task, position, map key.
  local is_list = #tasks > 0 or next(tasks) == nil
  local raws, positions, keys = {}, {}, {}
  if is_list then
    for key in pairs(tasks) do
      if math.type(key) ~= "integer" then
        self:add({ group = name, field = "tasks" }, string.format(
          "mixes a list with named entries ('%s'); use one form", tostring(key)))
      end
    end
    for i, raw_task in ipairs(tasks) do
      raws[i], positions[i] = raw_task, i
    end
  else
    for i, key in ipairs(sorted_keys(tasks)) do
      if type(key) ~= "string" then
        self:add({ group = name, field = "tasks" }, "map keys must be task names, got " .. type(key))
      else
        local n = #raws + 1
        raws[n], positions[n], keys[n] = tasks[key], i, key
      end
    end
  end

  -- On an agent only the task it runs is read: the master checked the rest, and reading a
  -- whole pipeline for every task would make a task's cost grow with the pipeline.
  local only = self.opts.only
  if only then
    local wanted_raws, wanted_positions, wanted_keys = {}, {}, {}
    for i, raw_task in ipairs(raws) do
      local uses = type(raw_task) == "table" and type(raw_task.uses) == "table" and raw_task.uses or nil
      local known = keys[i]
        or (type(raw_task) == "table" and type(raw_task.name) == "string" and raw_task.name)
        or (uses and type(uses.name) == "string" and uses.name)
      if known == nil or known == only.task then
        local n = #wanted_raws + 1
        wanted_raws[n], wanted_positions[n], wanted_keys[n] = raw_task, positions[i], keys[i]
      end
    end
    raws, positions, keys = wanted_raws, wanted_positions, wanted_keys
  end

  for i = 1, #raws do
    local task = self:task(name, raws[i], positions[i], keys[i])
    if task then
      if group.by_name[task.name] then
        self:add({ group = name, task = task.name, field = "name" }, "duplicate task name")
      else
        task.index = #group.tasks + 1
        group.tasks[#group.tasks + 1] = task
        group.by_name[task.name] = task
      end
    end
  end

  if not self.opts.on_agent then
    local policy, problem = dispatch.resolve(raw.dispatch)
    if policy then
      group.dispatch = policy
    else
      self:add({ group = name, field = "dispatch" }, problem)
    end
  end
  local group_delegate = raw.delegate_to ~= nil
    and agent_fields.delegate(self, { group = name, field = "delegate_to" }, raw.delegate_to)
  for _, task in ipairs(group.tasks) do
    agent_fields.resolve_target(self, group, task, group_delegate)
  end

  if only then
    group.handlers = {}
    return group
  end
  local by_name = group.by_name
  for _, task in ipairs(group.tasks) do
    for _, other in ipairs(task.depends_on) do
      if not by_name[other] then
        self:add({ group = name, task = task.name, field = "depends_on" },
          string.format("unknown task '%s'", other) .. suggest.hint(other, by_name))
      end
    end
    for _, other in ipairs(task.next_if_fail) do
      if not by_name[other] then
        self:add({ group = name, task = task.name, field = "next_if_fail" },
          string.format("unknown task '%s'", other) .. suggest.hint(other, by_name))
      elseif other == task.name then
        self:add({ group = name, task = task.name, field = "next_if_fail" }, "a task cannot handle its own failure")
      end
    end
  end
  handlers.check_direction(self, group, is_list)
  group.handlers = {}
  for _, task in ipairs(group.tasks) do
    for _, handler in ipairs(task.next_if_fail) do
      group.handlers[handler] = true
    end
  end
  local cycle = graph.find_cycle(group)
  if cycle then
    self:add({ group = name, field = "depends_on" }, "dependency cycle: " .. table.concat(cycle, " -> "))
  end
  return group
end

--- Normalizes a `TaskDefinitions` value; `file` is used in messages and to resolve `workdir`.
---@param defs any
---@param file string
---@param opts? { on_agent?: boolean, only?: { group: string, task: string } } on an agent, the master's directories are not checked, and only the task it runs is read
---@return table pipeline
function M.from_value(defs, file, opts)
  local checker = new_checker(file, opts)
  local base_dir = paths.absolute(paths.dirname(file))
  checker.base_dir = base_dir
  if defs == nil then
    errors.raise_validation(file .. ": no TaskDefinitions table defined")
  elseif type(defs) ~= "table" then
    errors.raise_validation(file .. ": TaskDefinitions must be a table of groups, got " .. type(defs))
  end
  local pipeline = { file = file, dir = base_dir, groups = {}, group_names = {} }
  for _, name in ipairs(sorted_keys(defs)) do
    local group = (not (opts and opts.only) or name == opts.only.group) and checker:group(name, defs[name], base_dir) or nil
    if group then
      pipeline.groups[name] = group
      pipeline.group_names[#pipeline.group_names + 1] = name
    end
  end
  if #checker.problems > 0 then
    error(errors.validation(checker.problems), 0)
  end
  pipeline.warnings = checker.warnings
  return pipeline
end

--- Runs a pipeline file; its `TaskDefinitions` as it left them (not normalized). User modules
--- and dispatch plugins are found with `require` in the pipeline's directory, its `plugins/`,
--- `./plugins/` and SLOTH_PLUGIN_PATH first.
---@param file string
---@return any defs
function M.run_file(file)
  local dir = paths.dirname(file)
  local search = { paths.join(dir, "?.lua"), paths.join(dir, "?/init.lua"), paths.join(dir, "plugins/?.lua"), "plugins/?.lua" }
  for plugin_dir in (os.getenv("SLOTH_PLUGIN_PATH") or ""):gmatch("[^:;]+") do
    search[#search + 1] = paths.join(plugin_dir, "?.lua")
  end
  package.path = table.concat(search, ";") .. ";" .. package.path
  local chunk, load_error = scripts.load(file)
  if not chunk then
    errors.raise_validation(load_error)
  end
  TaskDefinitions = nil
  local ok, run_error = pcall(scripts.run, file, chunk)
  if not ok then
    errors.raise_validation(tostring(run_error))
  end
  return TaskDefinitions
end

--- Runs a pipeline file and normalizes its `TaskDefinitions` (see `run_file`, `from_value`).
---@param file string
---@param opts? { on_agent?: boolean, only?: { group: string, task: string } }
function M.load(file, opts)
  return M.from_value(M.run_file(file), file, opts)
end

return M
