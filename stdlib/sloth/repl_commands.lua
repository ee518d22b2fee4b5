--- The REPL's `:` commands: a pipeline loaded, listed, run and its agents probed from the prompt,
--- as `sloth-runner` does it from the shell.
local cli = require("sloth.cli")

local M = {}

--- The pipeline `:load` read (its file), for `:list`, `:run`, `:agents`, `:reload`.
local loaded = nil

local function say(text)
  io.stdout:write(text, "\n")
end

local function need_loaded()
  if not loaded then
    error("no pipeline loaded: :load FILE first", 0)
  end
  return loaded
end

--- `:load FILE`: reads the pipeline (its globals are the prompt's from then on) and checks it.
local function load_pipeline(file)
  if not file then
    error("usage: :load FILE", 0)
  end
  local code = cli.validate({ file = file })
  if code ~= cli.EXIT_OK then
    return
  end
  loaded = file
end

--- `:run [-j N] [--spawn-agents] [--dry-run] [GROUP [TASK...]]`
local function run(args)
  local file = need_loaded()
  local opts = { file = file, tasks = {} }
  local i = 1
  while i <= #args do
    local arg = args[i]
    if arg == "-j" or arg == "--jobs" then
      local jobs = math.tointeger(tonumber(args[i + 1]))
      if not jobs or jobs < 1 then
        error(":run: " .. arg .. " needs a whole number of at least 1", 0)
      end
      opts.jobs = jobs
      i = i + 1
    elseif arg == "--spawn-agents" then
      opts.spawn_agents = true
    elseif arg == "-d" or arg == "--dry-run" then
      opts.dry_run = true
    elseif arg:sub(1, 1) == "-" then
      error(":run: unknown option " .. arg .. " (-j N, --spawn-agents, --dry-run)", 0)
    elseif not opts.groups then
      opts.groups = { arg }
    else
      opts.tasks[#opts.tasks + 1] = arg
    end
    i = i + 1
  end
  return cli.run(opts)
end

M.COMMANDS = {
  { name = "help", usage = ":help", about = "these commands, and the modules at hand" },
  { name = "load", usage = ":load FILE", about = "read a pipeline (its globals become the prompt's) and check it" },
  { name = "list", usage = ":list", about = "the loaded pipeline's groups and tasks" },
  { name = "run", usage = ":run [GROUP [TASK...]]",
    about = "run the loaded pipeline as `sloth-runner run` does; -j N, --spawn-agents, --dry-run" },
  { name = "agents", usage = ":agents", about = "the loaded pipeline's agents: up or not, version, load, round trip" },
  { name = "reload", usage = ":reload", about = "read the loaded pipeline again" },
  { name = "quit", usage = ":quit", about = "leave (as Ctrl-D does)" },
}

local MODULES = {
  { "log", "log.info/warn/error/debug/success(message, fields?)" },
  { "exec", "exec.run(command, { cwd, env, stdin, timeout, stream }) -> stdout, stderr, err; exec.command(program, ...args) -> the same, no shell" },
  { "fs", "fs.read/stat/ls/glob/tmpdir -> value, err; fs.write/append/mkdir/rm/rm_r/copy -> err; fs.exists, fs.tmpname" },
  { "data", "data.to_json/parse_json/to_yaml/parse_yaml, data.null" },
  { "net", "net.http_get(url, { headers, timeout }) / net.http_post(url, body, headers_or_opts) -> body, status, headers, err; net.download(url, dest, opts) -> err" },
  { "workspace", "workspace.snapshot/pack/unpack/changes/apply" },
  { "agent", "agent.connect(address, opts):execute(request) / :info(), agent.spawn{...}, agent.discover(url, opts)" },
  { "git", "git.clone(url, path) / git.repo(path) -> repo, err; repo:checkout/pull/push/add/commit/tag/result" },
  { "python", "python.venv(path) -> venv; venv:exists() / :create/pip/exec(args) -> result, err" },
  { "pulumi", "pulumi.stack(name, { workdir, login, venv }) -> stack; stack:up/preview/destroy/refresh/outputs/config/config_map/select -> result, err; pulumi.login, pulumi.install_plugin" },
  { "salt", "salt.client{ config }:target(tgt, form) / salt.target(tgt, form) -> target; target:cmd(fn, ...)/ping() -> result, err; salt.key.list/accept/delete/wait_and_accept" },
  { "gcp", "gcp.exec(args) / gcp.client{ project }:compute{ zone }:instances():list() (storage/sql/gke, service_account) -> result, err" },
  { "aws", "aws.exec(args, { profile }) / aws.s3.sync{...} / aws.secretsmanager.get_secret{...} / aws.client{ profile } -> value, err" },
  { "docker", "docker.exec(args) / build{ tag, path } / push{ tag } / run{ image } -> result, err" },
  { "terraform", "terraform.init/plan/apply/destroy{ workdir, ... } -> result, err; terraform.output{ workdir, name } -> value, err" },
  { "run", "run(file[, { groups, tasks, jobs, dry_run }]) -> exit code" },
  { "import", "import(path) -> what the Lua file at path returns" },
}

local function help()
  say("Commands:")
  for _, command in ipairs(M.COMMANDS) do
    say(string.format("  %-24s %s", command.usage, command.about))
  end
  say("Modules and functions:")
  for _, module in ipairs(MODULES) do
    say(string.format("  %-10s %s", module[1], module[2]))
  end
  say("Anything else is Lua: an expression prints its value; Tab completes names.")
end

local HANDLERS = {
  help = function()
    help()
  end,
  load = function(args)
    load_pipeline(args[1])
  end,
  list = function()
    cli.list({ file = need_loaded() })
  end,
  run = run,
  agents = function()
    cli.agents({ file = need_loaded() })
  end,
  reload = function()
    load_pipeline(need_loaded())
  end,
}

--- Whether `line` is a `:` command (not a `::label::`).
function M.is_command(line)
  return line:match("^%s*:$") ~= nil or line:match("^%s*:[^:]") ~= nil
end

--- The words of a command line: blanks separate them, a backslash escapes the next
--- character, quotes ("..." or '...') keep blanks (file names with spaces, as Tab writes them).
local function words_of(text)
  local words, current, quote, escaped = {}, nil, nil, false
  for char in text:gmatch(".") do
    if escaped then
      current, escaped = (current or "") .. char, false
    elseif char == "\\" and quote ~= "'" then
      escaped = true
    elseif quote then
      if char == quote then
        quote = nil
      else
        current = current .. char
      end
    elseif char == '"' or char == "'" then
      quote, current = char, current or ""
    elseif char:match("%s") then
      if current then
        words[#words + 1], current = current, nil
      end
    else
      current = (current or "") .. char
    end
  end
  if current then
    words[#words + 1] = current
  end
  return words
end

--- Runs the `:` command on `line`; "quit" when it asks to leave, else "done".
---@param line string
---@return "quit"|"done"
function M.execute(line)
  local words = words_of((line:gsub("^%s*:", "")))
  local name = table.remove(words, 1)
  if name == nil then
    help()
    return "done"
  end
  if name == "quit" or name == "q" or name == "exit" then
    return "quit"
  end
  local handler = HANDLERS[name]
  if not handler then
    local names = {}
    for _, command in ipairs(M.COMMANDS) do
      names[#names + 1] = command.name
    end
    io.stderr:write(string.format("unknown command :%s%s (:help lists them)\n", name,
      require("sloth.suggest").hint(name, names)))
    return "done"
  end
  local ok, err = pcall(handler, words)
  if not ok then
    io.stderr:write(tostring(err), "\n")
  end
  io.stdout:flush()
  return "done"
end

return M
