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
  taskdefs.from_value({ g = "nope", h = { tasks = 3 }, i = { tasks = {}, workdir = "/definitely/not/here" } }, "p.lua")
end)
h.contains(message, "p.lua: group 'g': must be a table, got string")
h.contains(message, "p.lua: group 'h': field 'tasks': must be a list or a map of tasks, got number")
h.contains(message, "p.lua: group 'i': field 'workdir': directory does not exist: /definitely/not/here")

message = h.validation_error(function()
  taskdefs.from_value({ g = { agents = { a = {} }, tasks = {} } }, "p.lua")
end)
h.contains(message, "p.lua: group 'g': field 'agents.a': has no 'address'")

message = h.validation_error(function()
  taskdefs.from_value({ g = { tasks = { { name = "t", command = "true", env = { X = {} } } } } }, "p.lua")
end)
h.contains(message, "task 't': field 'env': entry 'X' must map a name to a string")
