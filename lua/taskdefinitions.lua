---@meta
--- The shapes of a pipeline's `TaskDefinitions`, for editors (LuaLS).

---@class sloth.Agent
---@field address string host:port of a `sloth-runner agent`
---@field labels? table<string, string>

---@class sloth.Group
---@field description? string
---@field tasks sloth.Task[]|table<string, sloth.Task> a list (runs in declaration order) or a map name -> task
---@field workdir? string where the group's tasks run, relative to the pipeline file (default: where sloth-runner started)
---@field agents? table<string, sloth.Agent>

---@class sloth.Params: table
---@field workdir string the task's working directory
---@field task_name string
---@field group_name string

---@alias sloth.Command string|fun(params: sloth.Params, deps: table<string, table>): boolean, string?, table?

---@class sloth.Task
---@field name string unique in its group (optional in the map form, where the key is the name)
---@field description? string
---@field command sloth.Command a shell string (`sh -c` in the workdir, fails on non-zero exit) or a function returning ok, msg, outputs
---@field params? table passed to a function command; nested tables stay tables
---@field depends_on? string|string[] tasks that must succeed first; their outputs arrive in `deps[name]`
---@field env? table<string, string|number|boolean> extra environment variables for the task

---@type table<string, sloth.Group>
TaskDefinitions = {}

--- The mapping from `-v values.yaml` (an empty table without one).
---@type table<string, any>
values = {}
