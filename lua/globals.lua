---@meta
--- The globals every pipeline (and the REPL) has beside the native modules (`fs`, `data` and
--- the others have their own files here), for editors (LuaLS).

--- The pipeline: groups by name.
---@type table<string, sloth.Group>
TaskDefinitions = {}

--- The mapping of `sloth-runner run -v/--values FILE` (YAML; an empty table without one);
--- travels to every agent as it is.
---@type table<string, any>
values = {}

--- Runs a Lua file relative to the importing file, once per VM, and returns its value (true
--- when it returns nothing); an import cycle is an error naming the chain.
---@param path string
---@return any
function import(path) end

--- Publishes values (`run --return` prints them with the tasks' outputs).
---@param values table
function export(values) end

---@class sloth.ParallelTask
---@field name? string
---@field command sloth.Command
---@field params? table
---@field env? table<string, string|number|boolean> on top of the calling task's

---@class sloth.ParallelResult
---@field name string
---@field ok boolean
---@field message? string
---@field outputs table

--- Runs task tables at once from inside a task, in its workdir; their results in order, and
--- an error naming the failures (nil when all succeeded).
---@param tasks sloth.ParallelTask[]
---@return sloth.ParallelResult[] results
---@return string? err
function parallel(tasks) end

--- At the REPL: runs a pipeline as `sloth-runner run` does; its exit code.
---@param file string
---@param opts? { groups?: string[], tasks?: string[], jobs?: integer, dry_run?: boolean }
---@return integer
function run(file, opts) end
