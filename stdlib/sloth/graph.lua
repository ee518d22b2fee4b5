--- Dependency graph of a group: cycles, selection closure, execution order.
local M = {}

local heap = require("sloth.heap")

--- The first dependency cycle found, as a path that ends where it starts (`{ "a", "b", "a" }`),
--- or nil. Unknown dependencies are ignored here (they are reported on their own). Iterative:
--- a chain of 100,000 tasks does not overflow the stack.
---@param group { tasks: table[], by_name: table<string, table> }
---@return string[]?
function M.find_cycle(group)
  local state = {} -- nil: unvisited, 1: on the current path, 2: done
  local path, at = {}, {} -- the current path, and how far each of its tasks' deps were looked at
  for _, root in ipairs(group.tasks) do
    if state[root.name] == nil then
      state[root.name] = 1
      path[1], at[1] = root, 0
      local depth = 1
      while depth > 0 do
        local task = path[depth]
        local i = at[depth] + 1
        at[depth] = i
        local dep = task.depends_on[i]
        if dep == nil then
          state[task.name] = 2
          path[depth], at[depth] = nil, nil
          depth = depth - 1
        elseif group.by_name[dep] then
          if state[dep] == 1 then
            local cycle = {}
            for j = 1, depth do
              if path[j].name == dep then
                for k = j, depth do
                  cycle[#cycle + 1] = path[k].name
                end
                break
              end
            end
            cycle[#cycle + 1] = dep
            return cycle
          elseif state[dep] == nil then
            state[dep] = 1
            depth = depth + 1
            path[depth], at[depth] = group.by_name[dep], 0
          end
        end
      end
    end
  end
  return nil
end

--- The named tasks plus everything they depend on, transitively, as a set of names.
---@param group table
---@param names string[]
---@return table<string, boolean>
function M.closure(group, names)
  local selected = {}
  local stack = {}
  for i = #names, 1, -1 do
    stack[#stack + 1] = names[i]
  end
  while #stack > 0 do
    local name = table.remove(stack)
    local task = group.by_name[name]
    if task and not selected[name] then
      selected[name] = true
      for _, dep in ipairs(task.depends_on) do
        stack[#stack + 1] = dep
      end
    end
  end
  return selected
end

--- How `tasks` (a list; `index` maps a name to its position) depend on each other, counting
--- only dependencies among them: for each position, how many it waits for, and for each name,
--- the positions of the tasks that depend on it (once per time they name it).
---@return integer[] unmet, table<string, integer[]> dependents
function M.dependencies(tasks, index)
  local unmet, dependents = {}, {}
  for i, task in ipairs(tasks) do
    unmet[i] = 0
    for _, dep in ipairs(task.depends_on) do
      if index[dep] then
        unmet[i] = unmet[i] + 1
        dependents[dep] = dependents[dep] or {}
        table.insert(dependents[dep], i)
      end
    end
  end
  return unmet, dependents
end

--- Selected tasks in the order a one-at-a-time run starts them: repeatedly the earliest
--- declared task whose dependencies are all placed. O(tasks + dependencies) with a heap.
---@param group table
---@param selected? table<string, boolean> all tasks when nil
---@return table[]
function M.order(group, selected)
  local tasks, index = {}, {}
  for _, task in ipairs(group.tasks) do
    if selected == nil or selected[task.name] then
      tasks[#tasks + 1] = task
      index[task.name] = #tasks
    end
  end
  local unmet, dependents = M.dependencies(tasks, index)
  local ready = heap.new()
  for i in ipairs(tasks) do
    if unmet[i] == 0 then
      ready:push(i)
    end
  end
  local order = {}
  while ready:peek() do
    local task = tasks[ready:pop()]
    order[#order + 1] = task
    for _, d in ipairs(dependents[task.name] or {}) do
      unmet[d] = unmet[d] - 1
      if unmet[d] == 0 then
        ready:push(d)
      end
    end
  end
  if #order < #tasks then
    error("graph.order: dependency cycle among the remaining tasks", 2)
  end
  return order
end

return M
