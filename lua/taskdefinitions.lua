---@meta
--- The shapes of a pipeline's `TaskDefinitions`, for editors (LuaLS).

---@class sloth.Agent
---@field address? string host:port of a `sloth-runner agent` (also `http://host:port`, or `https://host:port` for TLS); or else `discover`
---@field discover? string a pool of agents found through DNS, instead of `address`: "dns+srv://NAME" (each SRV record of NAME: an agent's host and port) or "dns://NAME:PORT" (each A/AAAA record of NAME, on PORT) or "sloth://HOST:PORT" (each agent registered with that master, token from SLOTH_MASTER_TOKEN, TLS from SLOTH_MASTER_TLS_CA/_CERT/_KEY); members are named "POOL/host:port", share this entry's labels, token and tls, and are resolved when a task first needs them and again when all have failed
---@field nameserver? string with `discover`: the DNS server to ask, "host:port" (default: the system's, /etc/resolv.conf)
---@field labels? table<string, string>
---@field token? string the agent's shared secret (default: $SLOTH_AGENT_TOKEN)
---@field tls? { ca?: string, cert?: string, key?: string, domain?: string } talk TLS: the CA that signed the agent's certificate (default: the system's roots, as for an `https://` address), this master's certificate and key (for agents started with --tls-client-ca), the name to expect (default: the address's host); paths relative to the pipeline

---@class sloth.Candidate
---@field name string
---@field address string
---@field labels table<string, string>
---@field in_flight integer tasks this run has on it now
---@field healthy boolean false once it could not be reached
---@field latency? number seconds the last connection took

---@class sloth.DispatchContext
---@field task { name: string, group: string, params: table }
---@field candidates sloth.Candidate[]
---@field attempt integer 1 for the first attempt
---@field failures { agent: string, message: string }[] earlier attempts of this task

---@class sloth.Workspace
---@field exclude? string[] globs left out of what is shipped and of what comes back (plus .slothignore)
---@field sync_back? "on_success"|"always"|"never" when the agent's changes are applied here (default on_success)
---@field setuid? boolean carry setuid and setgid bits of files to the agent and back (default false: cleared, with a warning naming the files)
---@field same_path? boolean run on the agent at this workspace's own absolute path (a private mount namespace; needs an agent running as root)

---@class sloth.Group
---@field description? string
---@field tasks sloth.Task[]|table<string, sloth.Task> a list (runs in declaration order) or a map name -> task
---@field workdir? string where the group's tasks run, relative to the pipeline file (default: where sloth-runner started); created if it does not exist, and kept afterwards unless `clean_workdir_after_run` returns true
---@field agents? table<string, sloth.Agent> agents the group's tasks may name; never contacted unless a task runs there
---@field delegate_to? string|{ address: string } run every task of the group on the agent at this address
---@field dispatch? "first"|"round_robin"|"random"|"least_busy"|string|fun(ctx: sloth.DispatchContext): string|{ name: string, select: fun(ctx: sloth.DispatchContext): string } how a task with several candidate agents picks one: a built-in policy, a plugin module name (found with require in the pipeline's directory, plugins/, ./plugins/, SLOTH_PLUGIN_PATH), a function, or a plugin table; default "first"
---@field create_workdir_before_run? boolean run in a fresh temporary directory (when no `workdir` is named)
---@field clean_workdir_after_run? fun(result: { success: boolean, error?: string, outputs: table<string, table>, output: table }): boolean remove the workdir afterwards? (a named one is kept unless this returns true, even when the run created it; a temporary one is removed unless it returns false); `output` is the outputs of the group's last task (declaration order) that ran
---@field execution_mode? string accepted for pipelines written for the Go sloth-runner, with a warning: it has no effect here (use `--jobs N`)

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
---@field agent? string|string[]|{ labels: table<string, string> } where the task runs, in a private copy of its workdir: one of the group's `agents`, a list of them, "*" (any), or those with these labels; several candidates go through the group's `dispatch`
---@field delegate_to? string|{ address: string } run on the agent at this address (overrides the group's)
---@field workspace? sloth.Workspace what is shipped to the agent and when changes come back
---@field async? boolean start without blocking the next task (not counted by --jobs); awaited before its dependents and the end of the run
---@field retries? integer extra attempts after a failure
---@field retry_delay? string|number pause before the first retry ("1s" by default), doubled after each attempt, capped at 60s
---@field timeout? string|number e.g. "100ms", "10s", "1m": an attempt still running then is killed with its whole process tree, here or on the agent
---@field run_if? string|fun(params: sloth.Params, deps: table): boolean a shell command (exit 0 = true) or a function; false skips the task
---@field abort_if? string|fun(params: sloth.Params, deps: table): boolean true stops the whole run: nothing new starts, running tasks are cancelled
---@field pre_exec? fun(params: sloth.Params, deps: table): boolean, string? runs before the command; false fails the task
---@field post_exec? fun(params: sloth.Params, outputs: table): boolean, string? runs after the command succeeded; false fails the task
---@field next_if_fail? string|string[] failure handlers: tasks that run only when this one fails, seeing `deps[this] = { failed = true, message, outputs }`. Not the Go tool's reading (a handler listing the tasks it watches): listing a task this one depends on, or, in a list of tasks, one declared before it, is refused with an explanation
---@field uses? sloth.Task a base task (e.g. from `import`); every local field overrides it, `params` merged key by key
---@field artifacts? string|string[] globs relative to the workdir (the `fs.glob` dialect: `**` crosses directories; one matching nothing fails the task) saved after success under .sloth/artifacts/<run-id>/
---@field consumes? string|string[] artifact names copied into the workdir before the task runs
