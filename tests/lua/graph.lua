local graph = require("sloth.graph")

local function group(spec)
  local g = { tasks = {}, by_name = {} }
  for _, t in ipairs(spec) do
    local task = { name = t[1], depends_on = t[2] or {} }
    g.tasks[#g.tasks + 1] = task
    g.by_name[task.name] = task
  end
  return g
end

local cyclic = group({ { "x" }, { "a", { "b" } }, { "b", { "c" } }, { "c", { "a" } } })
assert(table.concat(graph.find_cycle(cyclic), " -> ") == "a -> b -> c -> a")
assert(table.concat(graph.find_cycle(group({ { "self", { "self" } } })), " -> ") == "self -> self")
assert(graph.find_cycle(group({ { "a" }, { "b", { "a" } } })) == nil)

local g = group({ { "C", { "B" } }, { "A" }, { "B", { "A" } }, { "D" } })
local names = {}
for _, t in ipairs(graph.order(g)) do names[#names + 1] = t.name end
assert(table.concat(names, ",") == "A,B,C,D", table.concat(names, ","))

local selected = graph.closure(g, { "C" })
assert(selected.A and selected.B and selected.C and not selected.D)
names = {}
for _, t in ipairs(graph.order(g, selected)) do names[#names + 1] = t.name end
assert(table.concat(names, ",") == "A,B,C")
