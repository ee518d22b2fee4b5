-- Declaration order, dependency order, outputs in deps, params.
local h = require("_helpers")

local seen = {}
local summary, events = h.run({
  g = {
    tasks = {
      { name = "C", depends_on = "B", command = function(_, deps)
          seen[#seen + 1] = "C"
          assert(deps.B.n == 2, "C sees B's outputs")
          assert(deps.A == nil, "only direct dependencies are in deps")
          return true, "c"
        end },
      { name = "A", command = function(params)
          seen[#seen + 1] = "A"
          assert(params.nested.list[3] == 3 and params.nested.deep.x == "y", "nested params stay tables")
          return true, "a", { n = 1 }
        end, params = { nested = { list = { 1, 2, 3 }, deep = { x = "y" } } } },
      { name = "B", depends_on = { "A" }, command = function(_, deps)
          seen[#seen + 1] = "B"
          return true, "b", { n = deps.A.n + 1 }
        end },
    },
  },
})
assert(summary.ok)
assert(table.concat(seen, ",") == "A,B,C", table.concat(seen, ","))
assert(events[1] == "start g/A" and events[#events] == "succeeded g/C", table.concat(events, "; "))
assert(summary.by_group.g.C.message == "c")

-- Independent tasks keep declaration order.
seen = {}
h.run({ g = { tasks = {
  { name = "z", command = function() seen[#seen + 1] = "z"; return true end },
  { name = "y", command = function() seen[#seen + 1] = "y"; return true end },
  { name = "x", command = function() seen[#seen + 1] = "x"; return true end },
} } })
assert(table.concat(seen, ",") == "z,y,x", table.concat(seen, ","))

-- The map form of `tasks` runs in name order.
seen = {}
h.run({ g = { tasks = {
  beta = { command = function() seen[#seen + 1] = "beta"; return true end },
  alpha = { command = function() seen[#seen + 1] = "alpha"; return true end },
} } })
assert(table.concat(seen, ",") == "alpha,beta", table.concat(seen, ","))

-- A shell task's outputs: stdout, stderr and exit code.
local s = h.run({ g = { tasks = {
  { name = "sh", command = "printf hello; printf oops >&2" },
  { name = "after", depends_on = "sh", command = function(_, deps)
      return deps.sh.stdout == "hello" and deps.sh.stderr == "oops" and deps.sh.exit_code == 0, "checked"
    end },
} } })
assert(s.ok, s.by_group.g.after.message)

-- -t: the selection pulls in dependencies and nothing else.
seen = {}
local function mark(name) return function() seen[#seen + 1] = name; return true end end
h.run({ g = { tasks = {
  { name = "a", command = mark("a") },
  { name = "b", depends_on = "a", command = mark("b") },
  { name = "c", command = mark("c") },
} } }, { tasks = { "b" } })
assert(table.concat(seen, ",") == "a,b", table.concat(seen, ","))
