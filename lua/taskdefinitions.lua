---@meta
--- The shapes of a pipeline's `TaskDefinitions`, for editors (LuaLS).

---@class sloth.Agent
---@field address string host:port of a `sloth-runner agent`
---@field labels? table<string, string>
---@field token? string the agent's shared secret (default: $SLOTH_AGENT_TOKEN)

---@class sloth.Workspace
---@field exclude? string[] globs left out of what is shipped and of what comes back (plus .slothignore)
---@field sync_back? "on_success"|"always"|"never" when the agent's changes are applied here (default on_success)

---@class sloth.Group
---@field description? string
---@field tasks sloth.Task[]|table<string, sloth.Task> a list (runs in declaration order) or a map name -> task
---@field workdir? string where the group's tasks run, relative to the pipeline file (default: where sloth-runner started)
---@field agents? table<string, sloth.Agent> agents the group's tasks may name; never contacted unless a task runs there
---@field delegate_to? string|{ address: string } run every task of the group on the agent at this address

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
---@field agent? string the name of one of the group's `agents`: the task runs there, in a private copy of its workdir
---@field delegate_to? string|{ address: string } run on the agent at this address (overrides the group's)
---@field workspace? sloth.Workspace what is shipped to the agent and when changes come back

---@type table<string, sloth.Group>
TaskDefinitions = {}

--- The mapping from `-v values.yaml` (an empty table without one).
---@type table<string, any>
values = {}
