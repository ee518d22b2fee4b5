--- The agent's side of a remote task, in the private copy of the workspace the host built:
--- load the pipeline from the scripts the master shipped (or find it read already: below), run
--- the task there — always here: an agent never re-dispatches what it was sent — and pack what
--- it changed.
local core = require("sloth.core")
local deadline = require("sloth.deadline")
local execute = require("sloth.execute")
local exports = require("sloth.exports")
local scripts = require("sloth.scripts")
local secrets = require("sloth.secrets")
local taskdefs = require("sloth.taskdefs")
local log = require("log")
local data = require("data")
local workspace = require("workspace")

local M = {}

-- What a task's Lua code prints goes to the master, which prints it as it is (on its stdout,
-- or on stderr when its stdout carries JSON): a function task says the same wherever it runs.
-- Not what the pipeline prints while it is read here: the master printed that when it read it.
-- (What the wrapper uses is its own: a task that redefines `tostring` does not change it.)
local raw_print, to_text, concat, pack = print, tostring, table.concat, table.pack
local forwarding = false
print = function(...)
  local parts = pack(...)
  for i = 1, parts.n do
    parts[i] = to_text(parts[i])
  end
  local text = concat(parts, "\t", 1, parts.n)
  if not (forwarding and core.print_to_master(text)) then
    raw_print(text)
  end
end

-- So does what it writes to the standard streams (`io.write`, `io.stdout:write`,
-- `io.stderr:write`), as it is: the agent's own streams are its log, shared by every task.
local io_write, io_output, io_stdout, io_stderr, io_type = io.write, io.output, io.stdout, io.stderr, io.type
local file_methods = getmetatable(io_stdout).__index
local file_write = file_methods.write
local math_type, string_format, value_type, select_n = math.type, string.format, type, select
local unpack, debug_getinfo, get_meta, raw_get = table.unpack, debug.getinfo, getmetatable, rawget

--- Where the first argument of a write that is neither a string nor a number is, if one is
--- (no table made: a write to a file of the task's is on its way here too).
local function first_bad(...)
  for i = 1, select_n("#", ...) do
    local kind = value_type((select_n(i, ...)))
    if kind ~= "string" and kind ~= "number" then
      return i
    end
  end
  return nil
end

--- Sends the first `upto` arguments of a write to the master's `stream`, as the bytes `write`
--- writes for them (numbers as it formats them).
local function send(stream, upto, ...)
  if upto == 0 then
    return
  end
  local parts = pack(...)
  for i = 1, upto do
    local value = parts[i]
    local kind = math_type(value)
    if kind == "integer" then
      parts[i] = string_format("%d", value)
    elseif kind == "float" then
      parts[i] = string_format("%.14g", value)
    end
  end
  core.print_to_master(concat(parts, "", 1, upto), stream)
end

--- Raises the error `write` raises for argument `position` (`value`), as the caller's call
--- names it: a method call does not count the file (`self_counted` says the wrapper takes it).
local function bad_argument(position, value, self_counted, unnamed)
  local call = debug_getinfo(2, "n") or {}
  local meta = get_meta(value)
  local name = value_type(meta) == "table" and raw_get(meta, "__name")
  local got = value_type(name) == "string" and name or value_type(value)
  local shift = (self_counted and call.namewhat ~= "method") and 1 or 0
  error(string_format("bad argument #%d to '%s' (string expected, got %s)", position + shift, call.name or unnamed, got), 3)
end

-- (Either wrapper: what comes before a bad argument is written, as `write` does, then it fails
-- as `write` fails.)
io.write = function(...)
  local out, bad = io_output(), first_bad(...)
  local upto = bad and bad - 1 or select_n("#", ...)
  if forwarding and out == io_stdout then
    send("stdout", upto, ...)
  elseif not bad then
    return io_write(...)
  elseif upto > 0 then
    io_write(unpack(pack(...), 1, upto))
  end
  if bad then
    bad_argument(bad, (select_n(bad, ...)), false, "io.write")
  end
  return out
end

file_methods.write = function(file, ...)
  local bad = first_bad(...)
  local upto = bad and bad - 1 or select_n("#", ...)
  local stream = forwarding and (file == io_stdout and "stdout" or file == io_stderr and "stderr") or nil
  if stream and io_type(file) == "file" then
    send(stream, upto, ...)
  elseif not bad or io_type(file) ~= "file" then
    return file_write(file, ...)
  elseif upto > 0 then
    file_write(file, unpack(pack(...), 1, upto))
  end
  if bad then
    bad_argument(bad, (select_n(bad, ...)), true, "?")
  end
  return file
end

-- And what a command it starts with `os.execute` writes, which would go to the agent's own
-- streams: kept in files of the task's own directory (removed with the task however it ends —
-- cancelled, its agent killed — never left in the system's temporary directory), sent when
-- the command returns (each stream whole, a piece at a time: never held whole in memory), and
-- what a command it left in the background writes later, when the task ends.
local os_execute, os_remove = os.execute, os.remove
local each_piece = require("sloth.os_commands").each_piece
local function quoted(path)
  return "'" .. path:gsub("'", "'\\''") .. "'"
end
-- The running task's directory, and its temporary files: path, stream, bytes sent so far.
local task_dir
local command_outputs = {}
local function send_new(output)
  output.sent = output.sent + each_piece(output.path, output.sent, function(piece)
    core.print_to_master(piece, output.stream)
  end)
end
os.execute = function(command)
  if not (forwarding and value_type(command) == "string") then
    return os_execute(command)
  end
  -- (A task that must stop starts nothing, and makes no file for it: its directory may be gone.)
  core.raise_if_stopped()
  local out = { path = core.scratch_file(task_dir), stream = "stdout", sent = 0 }
  local err = { path = core.scratch_file(task_dir), stream = "stderr", sent = 0 }
  command_outputs[#command_outputs + 1], command_outputs[#command_outputs + 2] = out, err
  -- (The command as `sh -c` runs it here, only its streams redirected: a command ending in a
  -- backslash, or whose shell names its lines in an error, behaves as it does here.)
  local results = pack(os_execute("exec >" .. quoted(out.path) .. " 2>" .. quoted(err.path) .. " sh -c " .. quoted(command)))
  -- (With what commands it left in the background wrote meanwhile, as they would show here.)
  for _, output in ipairs(command_outputs) do
    send_new(output)
  end
  return unpack(results, 1, results.n)
end
--- Sends what the task's commands wrote since, and removes their files.
local function outputs_done()
  for _, output in ipairs(command_outputs) do
    send_new(output)
    os_remove(output.path)
  end
  command_outputs = {}
end

-- The pipeline this VM read, by key (master, run, sources, values), as read: every task
-- normalized once. The agent gives this VM another task of that key only if nothing of the
-- pipeline ran here since it was read (the last task was a shell command without hooks) and
-- the standard library is still what the engine runs on (`untouched`): the pipeline is then
-- exactly as that read left it — read once per run, as on the master.
local loaded = { key = nil, pipeline = nil }

--- The most bytes of what one task exports, as JSON, sent to the master.
local MAX_EXPORTS = 4 * 1024 * 1024

--- What a task exported that can go to the master (as JSON): a value that cannot (a
--- function, a userdata) stays here, said so — the task does not fail over it.
local function travelling(exported)
  local going, size = {}, 0
  for key, value in pairs(exported) do
    local json, why = data.to_json({ [key] = value })
    if json == nil then
      log.warn(string.format("export '%s' is not sent to the master: %s", tostring(key), why))
    elseif size + #json > MAX_EXPORTS then
      log.warn(string.format("export '%s' is not sent to the master: the task's exports pass %d MiB as JSON",
        tostring(key), MAX_EXPORTS // (1024 * 1024)))
    else
      going[key], size = value, size + #json
    end
  end
  return going
end

-- What the engine runs on, as it was before any pipeline was read here: a pipeline that
-- replaces any of it (a wrapped `pairs`, a string metatable, a debug hook) could act while the
-- engine works for a later task, so such a VM is never kept.
local lua_type, lua_pairs, lua_next, lua_rawequal, lua_rawget = type, pairs, next, rawequal, rawget
local debug_gethook = debug.gethook
local LIBRARIES = { "string", "table", "math", "os", "io", "coroutine", "utf8", "debug", "exec", "log", "workspace", "agent", "net",
  "git", "python", "pulumi", "salt", "gcp", "aws", "docker", "terraform" }
local function fingerprint()
  local seen = {}
  for name, value in lua_pairs(_G) do
    if lua_type(value) == "function" then
      seen["_G." .. name] = value
    end
  end
  for _, library in ipairs(LIBRARIES) do
    -- (rawget: a module loaded on first use is not loaded by looking; one a pipeline loaded
    -- since the baseline is a difference, and the VM is not kept.)
    for name, value in lua_pairs(lua_rawget(_G, library) or {}) do
      seen[library .. "." .. name] = value
    end
  end
  local string_meta = getmetatable("")
  seen["string meta"] = string_meta and string_meta.__index
  return seen
end
local baseline = fingerprint()
local function untouched()
  -- (The engine's own hook is a native one, which `debug.gethook` does not return as a
  -- function: a function here is the pipeline's.)
  if lua_type(debug_gethook()) == "function" or getmetatable("") == nil then
    return false
  end
  local now = fingerprint()
  for name, value in lua_pairs(baseline) do
    if name ~= "_G.print" and not lua_rawequal(now[name], value) then
      return false
    end
  end
  for name in lua_pairs(now) do
    if baseline[name] == nil and name:sub(1, 3) ~= "_G." then
      return false
    end
  end
  return true
end

--- Whether task `name` of `group`, as the pipeline wrote it, may leave the VM untouched: not a
--- function, no hooks (a task from a template is judged once it is read).
local function may_keep(defs, group, name)
  local raw = lua_type(defs) == "table" and lua_rawget(defs, group)
  local tasks = lua_type(raw) == "table" and lua_rawget(raw, "tasks")
  if lua_type(tasks) ~= "table" then
    return true
  end
  for key, task in lua_next, tasks do
    if lua_type(task) == "table" and (key == name or lua_rawget(task, "name") == name) then
      return lua_type(lua_rawget(task, "command")) ~= "function" and lua_rawget(task, "pre_exec") == nil
        and lua_rawget(task, "post_exec") == nil
    end
  end
  return true
end

--- `req.root` is the task's private workspace, already built from the master's manifest and
--- the agent's cache; `req.base` is that manifest and `req.rules` the rules the master took it
--- with. `req.key` names the pipeline; `req.scripts` is absent when this VM read it already.
--- Runs `fn(...)` as a job of `context`; past `timeout` seconds (the task's, when it has one) the job is
--- stopped — what it started killed — and the task fails as it would on the master, its
--- changes still collected after (`sync_back = "always"` brings them back); `stopped` says so.
---@return boolean job_ok, any ok, any message, table? outputs, boolean? stopped
local function run_within(timeout, context, fn, ...)
  local job = core.spawn(fn, context, ...)
  if not timeout then
    return core.wait(job)
  end
  local timed_out = "timed out after " .. core.format_duration(timeout)
  local stopped, job_ok, ok, message, outputs = deadline.wait(job, timeout, timed_out)
  if stopped then
    return true, false, timed_out, {}, true
  end
  return job_ok, ok, message, outputs
end

--- Runs the pipeline file as the master ran it: the paths its top level names are the
--- master's, found in the task's copy of the workspace (`VERSION`, a config file read as it is
--- read), and what it writes through Lua is not written (the master wrote it, and the copy
--- holds it; see the prelude's `reading`). A command it runs (`io.popen("git describe")`)
--- runs in the copy, at the master's working directory; what such a command changed there is
--- not the task's doing and never comes back: the task's changes are taken against the copy
--- as the reading left it (`req.base` replaced), and a warning names them.
local function read_pipeline(req)
  local tree = scripts.tree
  if not tree then
    return taskdefs.run_file(req.pipeline)
  end
  local reading = { cwd = tree.cwd, workspace = tree.workspace, root = tree.root }
  -- Commands run at the master's working directory in the copy — or, when that lies outside
  -- the workspace (a group's `workdir` below it), at the copy's root: never in a directory of
  -- this machine that is not the task's.
  local cwd = scripts.here(".", reading)
  if cwd ~= tree.root and cwd:sub(1, #tree.root + 1) ~= tree.root .. "/" then
    cwd = tree.root
  end
  -- (A job: its coroutine carries the context, for the native functions too.)
  local job = core.spawn(taskdefs.run_file, { reading = reading, workdir = cwd }, req.pipeline)
  local read, defs = core.wait(job)
  reading.done = true
  if not read then
    error(defs, 0)
  end
  if reading.ran_command then
    local now = workspace.rescan(tree.root, req.base)
    if now.count > 0 then
      local named = {}
      for i, path in ipairs(now.paths) do
        named[i] = "'" .. path .. "'"
      end
      log.warn(string.format("reading %s again here, a command its top level runs changed %d path(s) of this copy of the"
        .. " workspace (%s%s): the master ran it as it read the pipeline; the task runs on the copy as it is now, and"
        .. " those changes do not come back", req.pipeline, now.count, table.concat(named, ", "),
        now.count > #named and ", …" or ""))
      req.base = now.snapshot
    end
  end
  return defs
end

---@param req { agent: string, group: string, task: string, pipeline: string, key: string?, scripts: table<string, string>?, params: table, deps: table, dir: string, root: string, workdir: string?, master_cwd: string?, master_workspace: string?, timeout: number?, base: userdata, rules: userdata }
---@return { ok: boolean, message: string?, outputs: table, exports: table, changes: userdata, reusable: boolean, stopped: boolean } | { failure: { kind: string?, message: string } }
function M.handle(req)
  local root = req.root
  -- A script the master did not ship (a module a task function requires as it runs) comes
  -- from this task's copy of the workspace, where the master would have read it.
  scripts.tree = req.master_workspace and { cwd = req.master_cwd, workspace = req.master_workspace, root = root }
  local pipeline
  if req.key ~= nil and loaded.key == req.key then
    pipeline = loaded.pipeline
  else
    scripts.shipped = req.scripts
    loaded.key, loaded.pipeline = nil, nil
    local defs = read_pipeline(req)
    -- Every task read (the master checked them all) when a later task may find this VM: this
    -- one may leave it untouched. Else only this task, so that its cost does not grow with
    -- the pipeline.
    local keep = req.key ~= nil and may_keep(defs, req.group, req.task)
    local only = not keep and { group = req.group, task = req.task } or nil
    pipeline = taskdefs.from_value(defs, req.pipeline, { on_agent = true, only = only })
    -- No task here reads how the master reaches its agents. (Once per read: a VM is given
    -- another task only if nothing of the pipeline ran since, so nothing put them back.)
    secrets.scrub(TaskDefinitions, pipeline)
    if keep then
      loaded.key, loaded.pipeline = req.key, pipeline
    end
  end
  local group = pipeline.groups[req.group]
  local task = group and group.by_name[req.task]
  if not task then
    error(string.format("%s: no task '%s' in group '%s'", req.pipeline, req.task, req.group), 0)
  end
  task.params = req.params
  -- The fields that are data as the master read them (an agent's own read of a pipeline that
  -- computes them from its environment or files would give the agent's).
  local fields = req.fields or {}
  if lua_type(fields.command) == "string" then
    task.command = fields.command
  end
  if fields.env ~= nil then
    task.env = fields.env
  end

  -- The rules that decide what comes back are those the master took its snapshot with, fixed
  -- before the task runs: a task that adds a pattern to `.slothignore` must not make the files
  -- it matches look deleted.
  local rules, base = req.rules, req.base
  -- Where the task runs: its copy, or (`same_path`) the master's path showing that copy. What
  -- it changed is read from the copy itself.
  local workdir = req.workdir or root
  local context = { group = req.group, task = req.task, prefix = req.agent .. "/" .. req.task, workdir = workdir, env = task.env }
  forwarding, task_dir, command_outputs = true, req.dir, {}
  exports.watch()
  local job_ok, ok, message, outputs, stopped = run_within(req.timeout, context, execute.run_here, task, req.deps, workdir)
  local exported = travelling(exports.watched())
  outputs_done()
  forwarding = false
  if not job_ok then
    ok, message, outputs = false, tostring(ok), {}
  end
  -- Kept in memory while small; a large archive goes to a file in the task's directory.
  -- Changes the master will not apply (its sync_back) are found (the tree is kept by them)
  -- but neither packed nor sent.
  local wanted = req.sync_back ~= "never" and (req.sync_back ~= "on_success" or ok == true)
  local packed, changes = pcall(workspace.changes, root, base,
    { rules = rules, spill = req.dir, agent_tree = true, pack = wanted })
  if not packed then
    -- The agent's own trouble (its disk full, its tree unreadable), not the task's: the host
    -- answers by the error's kind, with its message (no traceback of this file).
    local kind = lua_type(changes) == "table" and changes.kind or nil
    return { failure = { kind = kind, message = to_text(changes) } }
  end
  for _, item in ipairs(changes.skipped) do
    log.warn(string.format("'%s' is %s: not carried back to the master", item.path, item.kind))
  end
  for _, item in ipairs(changes.kept_outside) do
    log.warn(string.format("'%s' was moved by the task out of its workspace, to '%s' on the agent (it does not come"
      .. " back): '%s' is kept on the master", item.path, item.kept_as, item.path))
  end
  for _, item in ipairs(changes.moved_out) do
    log.warn(string.format("'%s' was deleted by the task, its bytes kept as '%s', which the workspace's rules"
      .. " leave out (it does not come back): '%s' is kept on the master", item.path, item.kept_as, item.path))
  end
  -- Nothing of the pipeline ran: a shell command, no hooks (what the master evaluates —
  -- conditions, dispatch — never runs here).
  local reusable = job_ok and lua_type(task.command) == "string" and task.pre_exec == nil and task.post_exec == nil
    and untouched()
  -- A tree whose task was stopped is not kept for the next task of its workspace.
  return { ok = ok, message = message, outputs = outputs or {}, exports = exported, changes = changes,
    reusable = reusable, stopped = stopped or false }
end

return M
