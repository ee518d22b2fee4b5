---@meta
--- The globals every pipeline (and the REPL) has beside the native modules, for editors (LuaLS).

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

--- File helpers; each returns `value, err` instead of raising. Relative paths resolve against
--- the running task's workdir.
fs = {}

---@param path string
---@return string? content
---@return string? err
function fs.read(path) end

---@param path string
---@param content string
---@return boolean? ok
---@return string? err
function fs.write(path, content) end

---@param path string
---@param content string
---@return boolean? ok
---@return string? err
function fs.append(path, content) end

---@param path string
---@return boolean
function fs.exists(path) end

--- Creates a directory and its parents.
---@param path string
---@return boolean? ok
---@return string? err
function fs.mkdir(path) end

--- Removes a file or an empty directory.
---@param path string
---@return boolean? ok
---@return string? err
function fs.rm(path) end

--- Removes a file or a directory with everything in it.
---@param path string
---@return boolean? ok
---@return string? err
function fs.rm_r(path) end

--- Names in a directory, sorted.
---@param path string
---@return string[]? names
---@return string? err
function fs.ls(path) end

--- A fresh temporary directory.
---@return string? path
---@return string? err
function fs.tmpname() end

--- At the REPL: runs a pipeline as `sloth-runner run` does; its exit code.
---@param file string
---@param opts? { groups?: string[], tasks?: string[], jobs?: integer, dry_run?: boolean }
---@return integer
function run(file, opts) end
