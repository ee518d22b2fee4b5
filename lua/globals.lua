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

--- What native functions raise when they fail (and `exec.run` returns): a table that prints
--- as `call: message` (`tostring(err)`, the text such errors always had) and whose `kind` says
--- what happened — decide on `kind` and `cause`, never on the message's words. Errors in how a
--- function is called (an unknown option, a value of the wrong type) are plain Lua errors.
---@class sloth.Error
---@field kind sloth.ErrorKind
---@field message string what went wrong, without the function's name
---@field call? string the function that failed, as scripts call it (`"agent.connect"`); none for `exec.run`'s
---@field address? string the agent's address, for an error about an agent (its message names the agent)
---@field agent? string the agent's name, when `agent.connect` was given one
---@field path? string the file or archive entry concerned, when one is
---@field url? string the URL of a `net` call (without a user and password)
---@field status? integer the HTTP status a `net.download` refused
---@field cause? sloth.ErrorCause what a failed connection or a refused call came down to, when known

---@alias sloth.ErrorKind
---| "unreachable" # the agent (or a `net` server) could not be reached: nothing listens there, the network, a TLS mismatch
---| "refused" # the agent refused the call: a missing or wrong token, a certificate it does not accept, a task it will not run as asked
---| "timeout" # a call or command took longer than it was given
---| "lost" # the connection to the agent broke during the task (for `net`: before the whole body arrived)
---| "failed" # the agent failed the call for a reason of its own (for `net.download`: a status other than 2xx, in `status`)
---| "conflict" # a path changed both here and by the task: nothing was applied
---| "no_space" # a disk (here or the agent's) or a quota ran out
---| "invalid" # refused as unsafe or malformed: a crafted archive entry, a bad manifest, past a size or entry limit, a corrupt archive, an invalid pattern, a URL that is not http(s)
---| "io" # a file could not be read or written (for `exec.run`: the program could not start)
---| "exit" # a command exited with a code other than 0
---| "signal" # a command was killed by a signal

---@alias sloth.ErrorCause
---| "nothing_listens" # nothing listens at the address
---| "untrusted_certificate" # the agent's certificate is not signed by a CA trusted here (`tls.ca`, else the system's), or does not name the address
---| "no_trusted_roots" # no CA certificate could be loaded from this system's store
---| "not_tls" # TLS was asked for, and the agent answered in plaintext
---| "connection_dropped" # the connection was dropped before the agent answered a plaintext call, as an agent that serves TLS does
---| "token_required" # the agent requires a token, and none was sent
---| "wrong_token" # the token sent is not the agent's
---| "certificate_refused" # the agent refused this master's certificate (mutual TLS), or that it had none
---| "changed_while_sent" # a file the workspace's snapshot named was gone when its content was sent (kind "conflict"): a new snapshot may go

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
---@field command? sloth.Command without one, the entry does nothing and succeeds (as in the Go tool)
---@field params? table
---@field env? table<string, string|number|boolean> on top of the calling task's
---@field pre_exec? fun(params: table, input: table): boolean, string? runs first; false fails the entry
---@field post_exec? fun(params: table, outputs: table): boolean, string? runs after a success

---@class sloth.ParallelResult
---@field name string
---@field ok boolean
---@field message? string
---@field outputs table
---@field status "success"|"failed" `ok` as the Go tool's pipelines read it
---@field duration number seconds the task took
---@field error? string the failure's message; nil when it succeeded

--- Runs task tables at once from inside a task, in its workdir; their results in order, and
--- an error naming the failures (nil when all succeeded). `input`, as in the Go tool, is the
--- second argument of each task's `command` and `pre_exec` functions (where a task of the
--- pipeline gets its dependencies' outputs); an empty table when not given.
---@param tasks sloth.ParallelTask[]
---@param input? table
---@return sloth.ParallelResult[] results
---@return string? err
function parallel(tasks, input) end

--- At the REPL: runs a pipeline as `sloth-runner run` does; its exit code.
---@param file string
---@param opts? { groups?: string[], tasks?: string[], jobs?: integer, dry_run?: boolean }
---@return integer
function run(file, opts) end
