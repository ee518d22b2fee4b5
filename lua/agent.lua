---@meta agent
--- Remote agents. Available as the global `agent` and through `require("agent")`.
agent = {}

---@class agent.Info
---@field name string
---@field version string
---@field labels table<string, string>
---@field max_tasks integer
---@field tasks_in_flight integer
---@field files_written integer files written into task trees since the agent started
---@field trees_reused integer tasks given the tree an earlier task of their workspace left
---@field contents_requested integer file contents the agent asked masters for since it started
---@field bytes_received integer bytes of workspace contents received since it started
---@field bytes_sent integer bytes of changes sent back since it started
---@field manifest_entries_received integer manifest entries that came over the wire since it started (a large manifest of a workspace it holds a tree of comes as an outline: only the parts it lacks travel)

---@class agent.Result
---@field ok boolean
---@field message? string
---@field outputs table
---@field exports? table what the task exported (`export`) while it ran; nil when nothing
---@field changes workspace.Archive what the task changed; `changes.deleted` lists removals

---@class agent.Request
---@field group string
---@field task string
---@field pipeline string path of the pipeline file (a key of `scripts`)
---@field scripts table<string, string> the pipeline and the files it loaded, by path
---@field params table
---@field deps table<string, table>
---@field values table
---@field workspace workspace.Manifest a snapshot (`workspace.snapshot`): the agent asks only for the contents it lacks
---@field setuid? boolean carry setuid and setgid bits of files (default false: the agent clears them)
---@field same_path? boolean show the workspace to the task at the snapshot's own path (a private mount namespace on the agent)
---@field sync_back? "always"|"on_success"|"never" which of the task's changes will be applied (default "always"): the agent neither packs nor sends the others
---@field fields? { command?: string, env?: table<string, string> } the task's command (when a string) and env as read here: the agent takes these rather than its own read of the pipeline's

---@class agent.Client
local Client = {}

--- The agent's identity and load; a failed call raises a `sloth.Error`.
---@return agent.Info
function Client:info() end

--- Runs a task on the agent, under this process's umask; its log and output lines show live,
--- prefixed with `prefix`, and what its Lua code printed is printed here with `print`.
--- `on_event` sees each: `{ kind = "log", level, message, fields }`, `{ kind = "output",
--- stream = "stdout"|"stderr", line }`, `{ kind = "print", text }`. `on_queue(true)` is called
--- when the task waits for one of the agent's `--max-tasks` slots, `on_queue(false)` when it
--- has one. Past `timeout` (not counting such a wait) the call is cancelled, which kills the
--- task on the agent. A failed call raises a `sloth.Error` naming
--- the agent: "unreachable", "refused", "lost", "timeout", "failed", or what the agent found
--- ("invalid", "no_space"); a task that ran and failed is `ok = false`, not an error.
---@param request agent.Request
---@param opts? { prefix?: string, on_event?: fun(event: { kind: "log"|"output"|"print", level: string?, message: string?, fields: string?, stream: string?, line: string?, text: string? }), on_queue?: fun(waiting: boolean), timeout?: number|string }
---@return agent.Result
function Client:execute(request, opts) end

---@return string
function Client:address() end

--- Connects to an agent (one channel per address for the whole run). `name` is how its errors
--- name the agent ("agent 'name' (address)"; without it "the agent at address"). A connection
--- that cannot be made raises a `sloth.Error` of kind "unreachable" (or "refused", when the
--- agent refuses this master's certificate), with its `cause` when known.
---@param address string host:port
---@param opts? { token?: string, tls?: { ca?: string, cert?: string, key?: string, domain?: string }, connect_timeout?: number|string, name?: string }
---@return agent.Client
function agent.connect(address, opts) end

---@class agent.Member
---@field host string what tells the member apart: the SRV record's target, or the A/AAAA record's address
---@field port integer
---@field address string where to connect: "ip:port" ("[ip]:port" for IPv6)
---@field server_name string the name its certificate is expected to carry: the SRV target, or the dns:// name

--- The members of an agent pool, found through DNS: `dns+srv://NAME` gives one per SRV record
--- of NAME (its target, reached at the target's lowest address, and its port), in priority
--- order; `dns://NAME:PORT` one per A and AAAA record of NAME, on PORT; `sloth://HOST:PORT`
--- one per agent registered with the master there (`sloth-runner master`; `host` is its
--- registered name), asked with the token in SLOTH_MASTER_TOKEN, over TLS as SLOTH_MASTER_TLS_CA,
--- SLOTH_MASTER_TLS_CERT and SLOTH_MASTER_TLS_KEY say. DNS is asked of `nameserver`
--- ("ip:port", "ip" for port 53, or "host:port") or else of the system's resolvers
--- (/etc/resolv.conf); each query within `timeout` (default 5s). Calls for the same URL while
--- one is under way share its answer. A failure raises a `sloth.Error` naming the URL, with
--- `url`: kind "unreachable" when the name does not exist or has no such records, or the
--- server failed the query; "timeout" when no answer came in time; "invalid" for a malformed
--- URL.
---@param url string
---@param opts? { nameserver?: string, timeout?: number|string }
---@return agent.Member[]
function agent.discover(url, opts) end

--- Starts `sloth-runner agent` on this machine and waits until it listens.
---@param opts { name: string, port: integer, bind?: string, token?: string, labels?: table<string, string> }
---@return { address: string, pid: integer, name: string, stop: fun() }
function agent.spawn(opts) end

return agent
