--- What a run will do: the selected groups and tasks, in order. Also prints it (`--dry-run`)
--- and lists a pipeline (`list`).
local core = require("sloth.core")
local discovery = require("sloth.agent_discovery")
local errors = require("sloth.errors")
local graph = require("sloth.graph")
local suggest = require("sloth.suggest")

local M = {}

--- Selects groups (`names`, default all in name order) and tasks (`tasks`, plus their
--- dependencies; default all). Unknown names are validation errors.
---@param pipeline table
---@param opts { groups?: string[], tasks?: string[] }
---@return { group: table, tasks: table[] }[]
function M.build(pipeline, opts)
  local problems = {}
  local group_names = pipeline.group_names
  if opts.groups and #opts.groups > 0 then
    group_names = {}
    local seen = {}
    for _, name in ipairs(opts.groups) do
      if not pipeline.groups[name] then
        problems[#problems + 1] = string.format("%s: unknown group '%s' (groups: %s)",
          pipeline.file, name, table.concat(pipeline.group_names, ", "))
      elseif not seen[name] then
        seen[name] = true
        group_names[#group_names + 1] = name
      end
    end
    table.sort(group_names)
  end

  local wanted = opts.tasks and #opts.tasks > 0 and opts.tasks or nil
  if wanted then
    for _, task_name in ipairs(wanted) do
      local found = false
      for _, group_name in ipairs(group_names) do
        local group = pipeline.groups[group_name]
        if group and group.by_name[task_name] then
          found = true
        end
      end
      if not found then
        local names = {}
        for _, group_name in ipairs(group_names) do
          local group = pipeline.groups[group_name]
          for name in pairs(group and group.by_name or {}) do
            names[#names + 1] = name
          end
        end
        table.sort(names)
        local hint = suggest.closest(task_name, names)
        problems[#problems + 1] = string.format("%s: unknown task '%s' (%s)", pipeline.file, task_name,
          hint and string.format("not in any selected group; did you mean '%s'?", hint) or "not in any selected group")
      end
    end
  end
  if #problems > 0 then
    error(errors.validation(problems), 0)
  end

  local plan = {}
  for _, name in ipairs(group_names) do
    local group = pipeline.groups[name]
    local selected = wanted and graph.closure(group, wanted) or nil
    local tasks = graph.order(group, selected)
    if #tasks > 0 then
      plan[#plan + 1] = { group = group, tasks = tasks }
    end
  end
  return plan
end

local function describe_command(task)
  if type(task.command) == "function" then
    return "function"
  end
  return "sh: " .. task.command
end

--- The plan as the JSON stream's `run_started` says it: groups in order, each with its tasks
--- in order, where they run and what they wait for.
function M.described(plan, workdir_of)
  local groups = {}
  for _, step in ipairs(plan) do
    local tasks = {}
    for i, task in ipairs(step.tasks) do
      local agents = nil
      if task.remote then
        agents = core.json_array({})
        for j, agent in ipairs(task.remote.candidates) do
          agents[j] = agent.name
        end
      end
      local depends_on = core.json_array({})
      for j, name in ipairs(task.depends_on) do
        depends_on[j] = name
      end
      tasks[i] = { name = task.name, depends_on = depends_on, agents = agents, command = describe_command(task) }
    end
    groups[#groups + 1] = { name = step.group.name, workdir = workdir_of(step.group), tasks = tasks }
  end
  return groups
end

--- The pools (agents found through DNS) the tasks of `step` may run on, resolved now, each
--- with a line saying what it resolved to; `members[pool]` is nil for one that resolved to
--- nothing.
local function print_pools(step, out)
  local members, seen = {}, {}
  for _, task in ipairs(step.tasks) do
    for _, candidate in ipairs(task.remote and task.remote.candidates or {}) do
      if discovery.is_pool(candidate) and not seen[candidate] then
        seen[candidate] = true
        local found, problem = discovery.members(candidate)
        if found then
          members[candidate] = found
          local names = {}
          for i, agent in ipairs(found) do
            names[i] = string.format("%s at %s", agent.name, agent.address)
          end
          out:write(string.format("  agent pool '%s' (%s): %d agent(s): %s\n", candidate.name, candidate.discover,
            #found, table.concat(names, ", ")))
        else
          out:write("  " .. problem .. "\n")
        end
      end
    end
  end
  return members
end

--- Prints the plan without running anything (on `out`, default stdout). Pools the plan uses
--- are resolved, to show their members.
function M.print(plan, pipeline, workdir_of, out)
  out = out or io.stdout
  out:write(string.format("plan for %s (dry run: nothing runs)\n", pipeline.file))
  for _, step in ipairs(plan) do
    local group = step.group
    out:write(string.format("group %s: %d task(s), workdir %s\n", group.name, #step.tasks, workdir_of(group)))
    local pools = print_pools(step, out)
    for i, task in ipairs(step.tasks) do
      local after = ""
      if #task.depends_on > 0 then
        after = "  after " .. table.concat(task.depends_on, ", ")
      end
      local where = "local"
      if task.remote then
        local names = {}
        for _, agent in ipairs(task.remote.candidates) do
          if discovery.is_pool(agent) then
            for _, m in ipairs(pools[agent] or {}) do
              names[#names + 1] = string.format("agent %s at %s", m.name, m.address)
            end
            if not pools[agent] then
              names[#names + 1] = string.format("agent pool %s (no agents)", agent.name)
            end
          else
            names[#names + 1] = agent.name == agent.address and ("agent at " .. agent.address)
              or string.format("agent %s at %s", agent.name, agent.address)
          end
        end
        where = table.concat(names, " | ")
        if #names > 1 then
          where = where .. ", chosen by " .. task.remote.policy.name
        end
      end
      out:write(string.format("  %d. %s  [%s]  %s%s\n", i, task.name, where, describe_command(task), after))
      if task.remote then
        local excluded = #task.workspace.exclude > 0 and (", excluding " .. table.concat(task.workspace.exclude, " ")) or ""
        out:write(string.format("     syncs %s to the agent%s; changes come back %s\n", workdir_of(group), excluded,
          ({ on_success = "after success", always = "always", never = "never" })[task.workspace.sync_back]))
        if task.workspace.same_path then
          out:write("     runs on the agent at this same path (a private mount namespace)\n")
        end
        if task.workspace.setuid then
          out:write("     carries setuid and setgid bits of files\n")
        end
      end
    end
  end
end

--- Prints groups, tasks, descriptions and dependencies.
function M.list(pipeline)
  local out = io.stdout
  for _, name in ipairs(pipeline.group_names) do
    local group = pipeline.groups[name]
    out:write(group.description and string.format("%s  %s\n", name, group.description) or name .. "\n")
    for _, task in ipairs(group.tasks) do
      local line = "  " .. task.name
      if task.description then
        line = line .. "  " .. task.description
      end
      if #task.depends_on > 0 then
        line = line .. "  (depends on: " .. table.concat(task.depends_on, ", ") .. ")"
      end
      if task.remote then
        local names = {}
        for _, agent in ipairs(task.remote.candidates) do
          names[#names + 1] = agent.name
        end
        line = line .. "  [on " .. table.concat(names, " | ") .. "]"
      end
      out:write(line .. "\n")
    end
  end
end

return M
