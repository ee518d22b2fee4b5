--- `next_if_fail` read the other way round. Here a task's `next_if_fail` names its failure
--- handlers: tasks that run only when it fails. Pipelines written for the Go tool put the field
--- on the handler instead, listing the tasks whose failure it handles; read with our meaning,
--- those tasks would silently never run ("no failure to handle"). Two shapes give that reading
--- away, and are refused with an explanation instead:
--- - the task depends (transitively) on a task it lists: that one must have succeeded before
---   this one starts, so it can never run on this one's failure;
--- - in a list of tasks, the task lists one declared before it: a handler is written after the
---   task it handles, and the Go examples list the earlier tasks they watch. (A map of tasks
---   has no declaration order, so only the first shape applies there.)
local graph = require("sloth.graph")

local M = {}

local function explain(task, other, why)
  return string.format(
    "'%s' %s; next_if_fail lists the tasks to run when '%s' fails (its failure handlers), not the tasks "
      .. "whose failure it handles. To run '%s' when '%s' fails, put next_if_fail = \"%s\" on '%s'",
    other, why, task, task, other, task, other)
end

---@param checker table the validation pass (`add(where, problem)`)
---@param group table a group whose task names are all known
---@param ordered boolean whether the tasks came as a list (declaration order means something)
function M.check_direction(checker, group, ordered)
  local position = {}
  for i, task in ipairs(group.tasks) do
    position[task.name] = i
  end
  for i, task in ipairs(group.tasks) do
    if #task.next_if_fail > 0 then
      local needs = #task.depends_on > 0 and graph.closure(group, task.depends_on) or {}
      for _, other in ipairs(task.next_if_fail) do
        local where = { group = group.name, task = task.name, field = "next_if_fail" }
        if other ~= task.name and position[other] then
          if needs[other] then
            checker:add(where, explain(task.name, other, "is a dependency of '" .. task.name .. "'"))
          elseif ordered and position[other] < i then
            checker:add(where, explain(task.name, other, "is declared before '" .. task.name .. "'"))
          end
        end
      end
    end
  end
end

return M
