--- The master's side of a remote task: snapshot the workdir, send the task with the pipeline's
--- scripts, params, deps and values (the agent asks only for the file contents it lacks), show
--- what the agent says as it says it, and apply the changes that come back (after success,
--- unless `workspace.sync_back` says otherwise).
local agent = require("agent")
local log = require("log")
local workspace = require("workspace")
local core = require("sloth.core")
local dispatch = require("sloth.dispatch")
local errors = require("sloth.errors")
local pool = require("sloth.agent_pool")
local scripts = require("sloth.scripts")
local spawn = require("sloth.spawn")

local M = {}

local function describe(target)
  if target.name == target.address then
    return string.format("agent at %s", target.address)
  end
  return string.format("agent '%s' (%s)", target.name, target.address)
end

--- A native error about `target`, naming it once: an error about the agent names it already
--- (the client was given its name); any other gets the agent's description in front.
local function about(target, err)
  if errors.is_native(err) and err.address then
    return err.message
  end
  return describe(target) .. ": " .. errors.clean(err)
end

--- The name the client gives the agent in its errors: none when it is named by its address.
local function error_name(target)
  if target.name ~= target.address then
    return target.name
  end
end

--- Up to a few names from `list` (strings, or `{ path = … }` tables), and how many more.
local function names(list)
  local shown = {}
  for i = 1, math.min(#list, 5) do
    local item = list[i]
    shown[i] = "'" .. (type(item) == "table" and item.path or item) .. "'"
  end
  local text = table.concat(shown, ", ")
  if #list > 5 then
    text = text .. string.format(" and %d more", #list - 5)
  end
  return text
end

--- Names what the snapshot holds that the agent will not get: sockets and devices, and the
--- setuid and setgid bits of files unless the task carries them.
local function warn_not_carried(snapshot, task)
  for _, item in ipairs(snapshot.skipped) do
    log.warn(string.format("'%s' is %s: not carried to the agent", item.path, item.kind))
  end
  local setid = snapshot.setid
  if #setid > 0 and not task.workspace.setuid then
    log.warn(names(setid) .. ": setuid and setgid bits are not carried to the agent (workspace.setuid = true carries them)")
  end
end

--- Why this system's roots may not hold the agent's CA: SSL_CERT_FILE names a file that cannot
--- be read.
local function unreadable_cert_file()
  local named = os.getenv("SSL_CERT_FILE")
  if not named or named == "" then
    return ""
  end
  local readable = io.open(named, "r")
  if readable then
    readable:close()
    return ""
  end
  return string.format(" (SSL_CERT_FILE names %s, which cannot be read)", named)
end

--- What to do about a failed connection or a refused call, by what it came down to: start an
--- agent where nothing listens (on this machine, or let the run start it); or what to check
--- when the two sides disagree on TLS or the token. `spawn_hint`: whether the master can start
--- the agent itself (`run --spawn-agents`).
local function next_step(target, err, spawn_hint)
  local cause = errors.cause(err)
  if cause == "nothing_listens" then
    local port = spawn.loopback_port(target.address)
    if port then
      return string.format(" — nothing listens there: start one with `sloth-runner agent -p %d`%s%s",
        port, spawn.asks_tls(target) and " (and its --tls-cert, --tls-key)" or "",
        spawn_hint ~= false and ", or run with --spawn-agents" or "")
    end
    return " — nothing listens there: start `sloth-runner agent` on that host, on that port"
  elseif cause == "wrong_token" then
    return " — the agent's `token` here differs from the agent's --token (or its SLOTH_AGENT_TOKEN)"
  elseif cause == "token_required" then
    return " — give the agent a `token` here, e.g. token = os.getenv(\"SLOTH_AGENT_TOKEN\")"
  elseif cause == "untrusted_certificate" and target.tls and target.tls.ca then
    return " — the agent's certificate is not signed by tls.ca, or does not name this address: check tls.ca and tls.domain"
  elseif cause == "untrusted_certificate" or cause == "no_trusted_roots" then
    return " — the agent's certificate is not signed by a CA this system trusts, or does not name this address:"
      .. " give it tls = { ca = \"ca.pem\" } here (the CA that signed it), or check tls.domain" .. unreadable_cert_file()
  elseif cause == "not_tls" then
    return " — the agent does not serve TLS: remove tls here, or start it with --tls-cert and --tls-key"
  elseif cause == "connection_dropped" then
    -- (A TLS agent drops a plaintext connection; how the client hears it is a race.)
    return " — if the agent serves TLS (--tls-cert), give it tls = { ca = \"ca.pem\" } here"
  end
  return ""
end

--- Runs `task` on the agent its dispatch policy picks; returns `ok, message, outputs` like a
--- local task. An agent that cannot be reached is marked unhealthy, so the next attempt (when
--- `retries` allow) goes elsewhere.
---@param task table a normalized task with `remote = { candidates, policy }`
---@param deps table<string, table>
---@param workdir string
---@param attempt? { number: integer, failures: table[], queue: table? }
function M.run(task, deps, workdir, attempt)
  local target, choice_error = dispatch.choose(task, attempt)
  if not target then
    return false, choice_error
  end
  if attempt then
    -- Where the task ran (its last attempt), for the summary.
    attempt.agent = target.name
  end
  log.debug(string.format("dispatched to %s (%s, attempt %d, %d candidate(s))", describe(target),
    "policy " .. (task.remote.policy and task.remote.policy.name or "first"), attempt and attempt.number or 1,
    #task.remote.candidates))
  pool.started(target)
  -- Finished however the call ends: also when the task's job is cancelled (its timeout, a
  -- failed sibling, Ctrl-C) and the coroutine is closed mid-call, or a policy would count the
  -- task in flight on this agent for the rest of the run.
  local _ <close> = setmetatable({}, { __close = function()
    pool.finished(target)
  end })
  local results = table.pack(pcall(M.run_on, target, task, deps, workdir, { queue = attempt and attempt.queue }))
  if not results[1] then
    error(results[2], 0)
  end
  local ok, message = results[2], results[3]
  if not ok and attempt then
    attempt.failures[#attempt.failures + 1] = { agent = target.name, message = message }
  end
  if attempt then
    attempt.sync = results[5]
  end
  return ok, message, results[4]
end

--- How many times a task is sent when files its snapshot named are gone as they are sent.
local SENDS = 3

--- Takes a snapshot of `workdir` and runs `task` on it at `target`: the snapshot, then what
--- `pcall(client.execute, ...)` returns; nil and a message when the workspace cannot be read.
local function send(client, target, task, deps, workdir, opts, again)
  -- A snapshot: the agent gets the manifest and asks only for the contents it lacks.
  local snapshot_started = core.now()
  local scanned, base = pcall(workspace.snapshot, workdir, { exclude = task.workspace.exclude })
  if not scanned then
    return nil, "reading the workspace " .. workdir .. ": " .. errors.clean(base)
  end
  log.debug(string.format("workspace %s: %d entries read in %s", workdir, base.entries,
    core.format_duration(core.now() - snapshot_started)))
  if not again then
    warn_not_carried(base, task)
  end
  local request = {
    group = task.group,
    task = task.name,
    pipeline = scripts.key(task.pipeline_file),
    scripts = opts.scripts or scripts.loaded,
    params = task.params,
    -- The task's fields that are data, as read here: the agent reads the pipeline again for
    -- its functions, but a command or env the pipeline computed from this machine's
    -- environment or files must be this machine's.
    fields = { command = type(task.command) == "string" and task.command or nil, env = task.env },
    deps = deps,
    values = values,
    workspace = base,
    setuid = task.workspace.setuid,
    same_path = task.workspace.same_path,
    -- Enforced by the agent, which answers with what the task did before it was stopped.
    timeout = task.timeout,
    -- Changes that will not be applied here are neither packed nor sent.
    sync_back = task.workspace.sync_back,
  }
  return base, pcall(client.execute, client, request,
    { prefix = opts.prefix or target.name .. "/" .. task.name, on_queue = opts.queue and opts.queue.set })
end

--- Runs `task` on `target`. `opts.prefix` is how its output lines are prefixed here (default
--- `agent/task`); `opts.scripts` the pipeline's files to ship (default: every file loaded);
--- `opts.spawn_hint = false` leaves `--spawn-agents` out of what to do about an agent not found;
--- `opts.queue` (a `deadline.queue_clock`) is told when the task waits for a slot at the agent.
---@param opts? { prefix?: string, scripts?: table<string, string>, spawn_hint?: boolean, queue?: table }
function M.run_on(target, task, deps, workdir, opts)
  opts = opts or {}
  local token = target.token or os.getenv("SLOTH_AGENT_TOKEN")
  local started = core.now()
  local connected, client = pcall(agent.connect, target.address,
    { token = token, tls = target.tls, name = error_name(target) })
  if not connected then
    pool.unreachable(target)
    return false, about(target, client) .. next_step(target, client, opts.spawn_hint)
  end
  pool.reached(target, core.now() - started)

  local base, called, result
  for sending = 1, SENDS do
    base, called, result = send(client, target, task, deps, workdir, opts, sending > 1)
    if not base then
      return false, called
    end
    -- A file the snapshot named gone as it was sent (an atomic save, a temporary directory
    -- removed): the task starts from a new snapshot rather than failing.
    if called or errors.cause(result) ~= "changed_while_sent" then
      break
    end
    if sending == SENDS then
      return false, about(target, result) .. string.format(" (the workspace was taken %d times)", SENDS)
    end
    log.warn(string.format("%s; taking the workspace again (%d of %d)", errors.clean(result), sending + 1, SENDS))
  end
  if not called then
    -- An agent that cannot be reached, that died mid-task, or that refuses this master (a
    -- token or certificate it does not accept: it will not change its mind) is not where the
    -- retry goes.
    local kind = errors.kind(result)
    if kind == "unreachable" or kind == "lost" or kind == "refused" then
      pool.unreachable(target)
    end
    return false, about(target, result) .. next_step(target, result, opts.spawn_hint)
  end

  -- What the task exported, as if it had run here (whether or not its changes come back).
  if result.exports then
    require("sloth.exports").add(result.exports)
  end

  -- What travelled: contents up, changes down (files written or deleted here once applied).
  local moved = { up = result.contents_sent or 0, up_bytes = result.bytes_sent or 0, down = 0,
    down_bytes = result.changes.size or 0 }
  local sync = task.workspace.sync_back
  if sync == "always" or (sync == "on_success" and result.ok) then
    local applied, report = pcall(workspace.apply, workdir, result.changes, { base = base, setuid = task.workspace.setuid })
    if not applied then
      return false, "applying the changes from " .. describe(target) .. ": " .. errors.clean(report)
    end
    if #report.unlinked > 0 then
      log.warn(names(report.unlinked) .. ": replaced; other names of the file here (hard links outside the workspace, left out of it, or made meanwhile) keep the old one")
    end
    if #report.stripped > 0 then
      log.warn(names(report.stripped) .. ": setuid and setgid bits from the agent were cleared (workspace.setuid = true carries them)")
    end
    if #report.not_given > 0 then
      log.warn(names(report.not_given) .. ": the task gave these setuid or setgid files another owner or group, which this process cannot give here (not root, or not in the group): those bits were cleared")
    end
    for _, dir in ipairs(report.kept) do
      log.warn(dir .. ": deleted by the task but kept here: it holds files the task never saw (excluded, or added here meanwhile)")
    end
    moved.down = report.written + report.deleted
  end
  log.debug(string.format("synced with %s: %d content(s) up (%d bytes); changes down (%d bytes): %d file(s) written or deleted here",
    describe(target), moved.up, moved.up_bytes, moved.down_bytes, moved.down))
  return result.ok, result.message, result.outputs, moved
end

return M
