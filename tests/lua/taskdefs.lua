-- Validation names file, group, task and field; both forms of `tasks` are read.
local taskdefs = require("sloth.taskdefs")
local h = require("_helpers")

local p = taskdefs.from_value({ g = { description = "d", tasks = {
  { name = "one", command = "true" },
  { name = "two", command = function() return true end, depends_on = "one", env = { N = 1, B = true } },
} } }, "p.lua")
assert(p.group_names[1] == "g")
assert(p.groups.g.tasks[2].depends_on[1] == "one")
assert(p.groups.g.tasks[2].env.N == "1" and p.groups.g.tasks[2].env.B == "true")

-- Tasks that leave a field out share its default; one that sets it never changes another's.
local shared = taskdefs.from_value({ g = { tasks = {
  { name = "a", command = "true" },
  { name = "b", command = "true", env = { X = 1 }, workspace = { exclude = { "*.o" }, setuid = true },
    next_if_fail = "c", artifacts = "out/*" },
  { name = "c", command = "true" },
} } }, "p.lua").groups.g.tasks
for _, i in ipairs({ 1, 3 }) do
  local task = shared[i]
  assert(next(task.env) == nil and #task.depends_on == 0 and #task.next_if_fail == 0 and #task.artifacts == 0)
  assert(#task.workspace.exclude == 0 and task.workspace.setuid == false and task.workspace.sync_back == "on_success")
end
assert(shared[2].env.X == "1" and shared[2].workspace.exclude[1] == "*.o" and shared[2].workspace.setuid == true)
assert(shared[2].workspace.sync_back == "on_success" and shared[2].next_if_fail[1] == "c")

local map = taskdefs.from_value({ g = { tasks = { b = { command = "true" }, a = { command = "true" } } } }, "p.lua")
assert(map.groups.g.tasks[1].name == "a" and map.groups.g.tasks[2].name == "b")

local message = h.validation_error(function()
  taskdefs.from_value({ g = { tasks = { x = { name = "y", command = "true" } } } }, "p.lua")
end)
h.contains(message, "p.lua: group 'g', task 'x': field 'name': 'y' differs from the key 'x'")

message = h.validation_error(function()
  taskdefs.from_value({ g = { tasks = { { command = "true" } } } }, "p.lua")
end)
h.contains(message, "p.lua: group 'g', task #1: field 'name': is missing")

message = h.validation_error(function()
  taskdefs.from_value({ g = "nope", h = { tasks = 3 }, i = { tasks = {}, workdir = "/etc/hostname" } }, "p.lua")
end)
h.contains(message, "p.lua: group 'g': must be a table, got string")
h.contains(message, "p.lua: group 'h': field 'tasks': must be a list or a map of tasks, got number")
h.contains(message, "p.lua: group 'i': field 'workdir': exists and is not a directory: /etc/hostname")

-- A workdir that does not exist yet is fine (the run creates it); validation creates nothing.
local later = taskdefs.from_value({ g = { tasks = {}, workdir = "/definitely/not/here" } }, "p.lua")
assert(later.groups.g.workdir == "/definitely/not/here" and not fs.exists("/definitely/not/here"))

-- execution_mode (the Go tool's) is accepted with a warning naming file, group and field.
local moded = taskdefs.from_value({ g = { execution_mode = "parallel", tasks = {} }, plain = { tasks = {} } }, "p.lua")
assert(#moded.warnings == 1, #moded.warnings)
h.contains(moded.warnings[1], "p.lua: group 'g': field 'execution_mode': has no effect in sloth-runner")
assert(#taskdefs.from_value({ g = { execution_mode = "x", tasks = {} } }, "p.lua", { on_agent = true }).warnings == 0,
  "an agent repeats the master's warnings")

message = h.validation_error(function()
  taskdefs.from_value({ g = { agents = { a = {} }, tasks = {} } }, "p.lua")
end)
h.contains(message, "p.lua: group 'g': field 'agents.a': has no 'address'")

message = h.validation_error(function()
  taskdefs.from_value({ g = { tasks = { { name = "t", command = "true", env = { X = {} } } } } }, "p.lua")
end)
h.contains(message, "task 't': field 'env': entry 'X' must map a name to a string")
