--- Entry points of the command line: each takes the parsed options and returns an exit code.
local errors = require("sloth.errors")
local plan_mod = require("sloth.plan")
local report = require("sloth.report")
local runner = require("sloth.runner")
local taskdefs = require("sloth.taskdefs")
local core = require("sloth.core")
local spawn = require("sloth.spawn")
local artifacts = require("sloth.artifacts")
local exports = require("sloth.exports")
local scripts = require("sloth.scripts")
local secrets = require("sloth.secrets")
local data = require("data")
local status = require("sloth.status")

-- The process's stdout, whatever Lua code makes of `io.stdout`: where the run's JSON goes.
local real_stdout = io.stdout

local M = {}

M.EXIT_OK = 0
M.EXIT_FAILED = 1
M.EXIT_INVALID = 2

--- Prints an error that stopped the run before anything ran; returns the exit code.
local function invalid(err)
  if errors.is_validation(err) then
    for _, message in ipairs(err.messages) do
      io.stderr:write("error: " .. message .. "\n")
    end
  else
    io.stderr:write("error: " .. tostring(err) .. "\n")
  end
  return M.EXIT_INVALID
end

--- Loads the pipeline (from `source` instead of the file when given: the file rendered as a
--- template); `nil, code` when it is not valid. Warnings (fields accepted but without effect)
--- go to stderr, whatever the command.
local function load(file, source)
  if source then
    scripts.provide(file, source)
  end
  local ok, pipeline = pcall(taskdefs.load, file)
  if not ok then
    return nil, invalid(pipeline), pipeline
  end
  for _, warning in ipairs(pipeline.warnings or {}) do
    io.stderr:write("warning: " .. warning .. "\n")
  end
  return pipeline
end

--- An error that stopped the run before anything ran, as one line of text.
local function error_line(err)
  if errors.is_validation(err) then
    return table.concat(err.messages, "; ")
  end
  return errors.clean(err)
end

local function workdir_resolver()
  local cwd = core.cwd()
  return function(group)
    return group.workdir or cwd
  end
end

--- With `--return` or `--output json`, stdout carries only JSON: `print` and `io.write` go to
--- stderr (and what is printed is an `output` event of the stream, `stream = "print"`).
local function keep_stdout_for_json()
  core.keep_stdout()
  -- The values as text, joined by `sep`; with the event stream on, also an `output` event of
  -- the running task (`more`: a written text, which need not end a line).
  local function as_output(sep, more, ...)
    local parts = table.pack(...)
    for i = 1, parts.n do
      parts[i] = tostring(parts[i])
    end
    local text = table.concat(parts, sep, 1, parts.n)
    if core.events_on() then
      local context = core.contexts[coroutine.running()]
      core.event("output", { task = context and context.prefix, stream = "print", line = text, more = more })
    end
    return text
  end
  print = function(...)
    io.stderr:write(as_output("\t", nil, ...), "\n")
  end
  -- What Lua code writes (`io.write`, `io.stdout:write`, the default output) goes to stderr
  -- too, as a remote task's does: stdout stays JSON only (the run's own JSON goes through
  -- `real_stdout`).
  io.write = function(...)
    as_output("", true, ...)
    return io.stderr:write(...)
  end
  io.stdout = io.stderr
  io.output(io.stderr)
end

--- `{ exports = {...}, outputs = { group = { task = outputs } } }` of the tasks that succeeded.
local function return_document(summary)
  local outputs = {}
  for _, result in ipairs(summary.results) do
    if result.status == "succeeded" then
      outputs[result.group] = outputs[result.group] or {}
      outputs[result.group][result.task] = result.outputs
    end
  end
  return { exports = exports.values, outputs = outputs }
end

---@param opts { file: string, source?: string, groups?: string[], tasks?: string[], dry_run?: boolean, jobs?: integer, quiet?: boolean, return_json?: boolean }
function M.run(opts)
  if opts.return_json or opts.json_events then
    keep_stdout_for_json()
  end
  local status_shown = not opts.quiet and status.start()
  local pipeline, code, err = load(opts.file, opts.source)
  if not pipeline then
    core.event("run_finished", { pipeline = opts.file, exit_code = code, ok = false, error = error_line(err) })
    return code
  end
  local ok, plan = pcall(plan_mod.build, pipeline, opts)
  if not ok then
    code = invalid(plan)
    core.event("run_finished", { pipeline = opts.file, exit_code = code, ok = false, error = error_line(plan) })
    return code
  end
  local workdir_of = workdir_resolver()
  if core.events_on() then
    core.event("run_started", { pipeline = pipeline.file, dry_run = opts.dry_run == true, jobs = opts.jobs or 1,
      groups = plan_mod.described(plan, workdir_of) })
  end
  if opts.dry_run then
    plan_mod.print(plan, pipeline, workdir_of, opts.json_events and io.stderr or real_stdout)
    core.event("run_finished", { pipeline = pipeline.file, exit_code = M.EXIT_OK, ok = true, dry_run = true })
    return M.EXIT_OK
  end
  local spawned = {}
  if opts.spawn_agents then
    local started, handles = pcall(spawn.start, plan)
    if not started then
      io.stderr:write("error: --spawn-agents: " .. tostring(handles) .. "\n")
      return M.EXIT_FAILED
    end
    spawned = handles
  end
  local reporter = report.new({ quiet = opts.quiet, status = status_shown })
  local run_opts = { jobs = opts.jobs, workdir_of = workdir_of, reporter = reporter, store = artifacts.new_store(pipeline.dir) }
  -- Generational collection while the tasks run: the pipeline's tables are old and stay, each
  -- task's are young and die; a full mark of every task's definition per cycle is what the
  -- incremental mode costs (a third less peak memory for 10,000 tasks and more, time level).
  local gc_mode = collectgarbage("generational")
  local ran, summary = pcall(runner.run, plan, run_opts)
  collectgarbage(gc_mode)
  spawn.stop(spawned)
  status.stop()
  if not ran then
    error(summary, 0)
  end
  reporter.summary(summary.results, summary.elapsed, summary.aborted_by)
  if core.events_on() then
    local counts = { succeeded = 0, failed = 0, skipped = 0, aborted = 0 }
    for _, result in ipairs(summary.results) do
      counts[result.status] = counts[result.status] + 1
    end
    core.event("run_finished", { pipeline = pipeline.file, exit_code = summary.ok and M.EXIT_OK or M.EXIT_FAILED,
      ok = summary.ok, counts = counts, duration = math.floor(summary.elapsed * 1e6 + 0.5) / 1e6,
      aborted_by = summary.aborted_by })
  end
  if opts.return_json then
    local document, err = data.to_json(return_document(summary))
    if not document then
      io.stderr:write("error: --return: " .. tostring(err) .. "\n")
      return M.EXIT_FAILED
    end
    real_stdout:write(document, "\n")
  end
  return summary.ok and M.EXIT_OK or M.EXIT_FAILED
end

---@param opts { file: string, source?: string }
function M.list(opts)
  local pipeline, code = load(opts.file, opts.source)
  if not pipeline then
    return code
  end
  plan_mod.list(pipeline)
  return M.EXIT_OK
end

---@param opts { file: string, groups?: string[], output?: string }
function M.agents(opts)
  local pipeline, code = load(opts.file)
  if not pipeline then
    return code
  end
  return require("sloth.agents_probe").report(pipeline, opts) and M.EXIT_OK or M.EXIT_FAILED
end

---@param opts { file?: string, target: string, agent?: table, command: string, sync?: boolean, sync_many?: boolean, jobs?: integer, timeout?: number }
function M.exec(opts)
  local adhoc = require("sloth.adhoc")
  if opts.agent then
    -- `agent run NAME`: the agent a master's registry names, found already.
    return adhoc.run({ opts.agent }, opts) and M.EXIT_OK or M.EXIT_FAILED
  end
  local file = opts.file
  if not file and not adhoc.is_address(opts.target)
    and not require("sloth.agent_fields").discovery_url(opts.target) then
    file = adhoc.DEFAULT_FILE
    if not scripts.exists(file) then
      return invalid(string.format("'%s' names agents of a pipeline, and there is no %s here: give the pipeline with -f FILE "
        .. "(or an agent's address host:port, or a discovery URL, as the target)", opts.target, file))
    end
  end
  local declared = {}
  if file then
    local pipeline, code = load(file)
    if not pipeline then
      return code
    end
    declared = adhoc.declared(pipeline)
  end
  local targets, problem = adhoc.select(declared, opts.target, file)
  if not targets then
    return invalid(problem)
  end
  if opts.sync and #targets > 1 and not opts.sync_many then
    local names = {}
    for i, target in ipairs(targets) do
      names[i] = target.name
    end
    return invalid(string.format("--sync with %d agents (%s): each would apply its changes to this directory, and a file "
      .. "two of them change fails the later one as a conflict; select one agent, or pass --sync-many to accept that",
      #targets, table.concat(names, ", ")))
  end
  return adhoc.run(targets, opts) and M.EXIT_OK or M.EXIT_FAILED
end

---@param opts { file: string, source?: string }
function M.validate(opts)
  local pipeline, code = load(opts.file, opts.source)
  if not pipeline then
    return code
  end
  local tasks = 0
  for _, name in ipairs(pipeline.group_names) do
    tasks = tasks + #pipeline.groups[name].tasks
  end
  io.stdout:write(string.format("%s: ok (%d group(s), %d task(s))\n", opts.file, #pipeline.group_names, tasks))
  for _, found in ipairs(secrets.literal_tokens(scripts.loaded)) do
    io.stderr:write(string.format(
      "warning: %s: a token %s travels to every agent; read it from the environment (token = os.getenv(\"…\"))\n",
      found.where, found.how))
  end
  return M.EXIT_OK
end

---@param opts { workflow: string, file: string }
function M.test(opts)
  local pipeline, code = load(opts.workflow)
  if not pipeline then
    return code
  end
  local passed, err = require("sloth.test_runner").run(pipeline, opts.file)
  if passed == nil then
    io.stderr:write("error: test file " .. tostring(err) .. "\n")
    return M.EXIT_INVALID
  end
  return passed and M.EXIT_OK or M.EXIT_FAILED
end

return M
