--- Dependency graph of a group: cycles, selection closure, execution order.
local M = {}

--- The first dependency cycle found, as a path that ends where it starts (`{ "a", "b", "a" }`),
--- or nil. Unknown dependencies are ignored here (they are reported on their own).
---@param group { tasks: table[], by_name: table<string, table> }
---@return string[]?
function M.find_cycle(group)
  local state = {} -- nil: unvisited, 1: on the current path, 2: done
  local path = {}
  local function visit(task)
    state[task.name] = 1
    path[#path + 1] = task.name
    for _, dep in ipairs(task.depends_on) do
      local next_task = group.by_name[dep]
      if next_task then
        if state[dep] == 1 then
          local cycle = {}
          local start
          for i, name in ipairs(path) do
            if name == dep then
              start = i
            end
          end
          for i = start, #path do
            cycle[#cycle + 1] = path[i]
          end
          cycle[#cycle + 1] = dep
          return cycle
        elseif state[dep] == nil then
          local found = visit(next_task)
          if found then
            return found
          end
        end
      end
    end
    path[#path] = nil
    state[task.name] = 2
    return nil
  end
  for _, task in ipairs(group.tasks) do
    if state[task.name] == nil then
      local found = visit(task)
      if found then
        return found
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
  local function add(name)
    if selected[name] or not group.by_name[name] then
      return
    end
    selected[name] = true
    for _, dep in ipairs(group.by_name[name].depends_on) do
      add(dep)
    end
  end
  for _, name in ipairs(names) do
    add(name)
  end
  return selected
end

--- Selected tasks in the order a one-at-a-time run starts them: repeatedly the earliest
--- declared task whose dependencies are all placed.
---@param group table
---@param selected? table<string, boolean> all tasks when nil
---@return table[]
function M.order(group, selected)
  local placed, order = {}, {}
  local remaining = {}
  for _, task in ipairs(group.tasks) do
    if selected == nil or selected[task.name] then
      remaining[#remaining + 1] = task
    end
  end
  while #remaining > 0 do
    local picked
    for i, task in ipairs(remaining) do
      local ready = true
      for _, dep in ipairs(task.depends_on) do
        if not placed[dep] then
          ready = false
          break
        end
      end
      if ready then
        picked = i
        break
      end
    end
    if picked == nil then
      error("graph.order: dependency cycle among the remaining tasks", 2)
    end
    local task = table.remove(remaining, picked)
    placed[task.name] = true
    order[#order + 1] = task
  end
  return order
end

return M
