--- `pulumi`: the Go sloth-runner's pulumi module, as a thin layer over `exec` (global `pulumi`,
--- or `require("pulumi")`).
---
--- Every call runs the real `pulumi` with an argument vector (no shell) and returns
--- `result, err`: `err` is nil on success, else an error value (`sloth.Error`) that names the
--- pulumi command and carries its stdout and stderr. Results carry `success`, `stdout` and
--- `stderr` (kept apart: the Go module put both in `stdout`). Where the Go module ran
--- `bash -c "source VENV/bin/activate && pulumi login URL && pulumi …"`, this sets the venv's
--- environment itself (`VIRTUAL_ENV`, its `bin` first on PATH) and runs `pulumi login URL`
--- before each command, as the Go module did; `~/.pulumi/bin` comes on PATH before the rest.
---
--- Stack commands run in the stack's workdir (relative paths resolve against the running
--- task's workdir) with the task's `env`, and stop with it (timeout, cancellation).
local core = require("sloth.core")
local data = require("data")
local fs = require("fs")
local tool = require("sloth.tool")

local M = {}

local Stack = {}
Stack.__index = Stack

local Failed = tool.failed_meta("pulumi", Stack)

--- The environment of a pulumi command: PATH with the venv's `bin` and `~/.pulumi/bin` first.
local function environment(venv)
  local dirs = {}
  if venv then
    dirs[#dirs + 1] = venv .. "/bin"
  end
  local home = tool.getenv("HOME")
  if home and home ~= "" then
    dirs[#dirs + 1] = home .. "/.pulumi/bin"
  end
  local path = tool.getenv("PATH")
  if path and path ~= "" then
    dirs[#dirs + 1] = path
  end
  return { PATH = table.concat(dirs, ":"), VIRTUAL_ENV = venv }
end

--- Runs `pulumi args...` for `call` in `dir` (nil: the task's workdir), logging in first when
--- `login` names a backend.
local function run(call, dir, args, login, venv)
  local env = environment(venv)
  if venv and not fs.exists(venv .. "/bin/activate") then
    local message = string.format("the venv %s does not exist (no bin/activate)", venv)
    local err = core.error_value("io", message, { call = call, path = venv })
    return { success = false, stdout = "", stderr = "", error = err }, err
  end
  if login then
    local result, err = tool.run({ "pulumi", "login", login }, { call = call, cwd = dir, env = env })
    if err then
      return result, err
    end
  end
  local argv = { "pulumi" }
  table.move(args, 1, #args, 2, argv)
  return tool.run(argv, { call = call, cwd = dir, env = env })
end

--- A venv option: a venv (or any table with a `path`, as one handed over between tasks), or
--- a path; absolute.
local function venv_path(value, name)
  if value == nil then
    return nil
  end
  if type(value) == "table" and type(value.path) == "string" then
    return tool.absolute(value.path)
  end
  if type(value) == "string" and value ~= "" then
    return tool.absolute(value)
  end
  error(string.format("pulumi.stack: expected a venv or a path for '%s', got %s", name, type(value)), 3)
end

--- A stack of the project in `opts.workdir` (required).
function M.stack(name, opts)
  tool.check_string("pulumi.stack", "name", name)
  if type(opts) ~= "table" then
    error("pulumi.stack: expected a table for 'opts', got " .. type(opts), 2)
  end
  if opts.workdir == nil or opts.workdir == "" then
    error("pulumi.stack: the 'workdir' option is required", 2)
  end
  tool.check_string("pulumi.stack", "workdir", opts.workdir)
  local login = opts.login or opts.login_url
  if login ~= nil then
    tool.check_string("pulumi.stack", "login", login)
  end
  local venv = venv_path(opts.venv, "venv") or venv_path(opts.venv_path, "venv_path")
  return setmetatable({ name = name, workdir = tool.absolute(opts.workdir), login = login, venv = venv,
    success = true, stdout = "", stderr = "" }, Stack)
end

--- Runs a stack command; the result table and the error.
local function stack_run(stack, call, args)
  return run(call, stack.workdir, args, stack.login, stack.venv)
end

--- A command whose success returns the stack (so calls chain) and whose failure returns the
--- failed result, on which a chained method raises.
local function chained(stack, call, args)
  local result, err = stack_run(stack, call, args)
  stack.success, stack.stdout, stack.stderr = result.success, result.stdout, result.stderr
  if err then
    result.name = stack.name
    return setmetatable(result, Failed), err
  end
  return stack, nil
end

local function config_value(call, key, value)
  if type(value) == "table" then
    local text, reason = data.to_json(value)
    if text == nil then
      error(string.format("%s: the value of '%s' has no JSON form: %s", call, key, reason), 3)
    end
    return text
  end
  return tool.text(call, string.format("the value of '%s'", key), value)
end

--- `pulumi up|preview|destroy|refresh --stack NAME` with the options of the Go module and its
--- documentation.
local function update(stack, command, opts)
  local call = "stack:" .. command
  local args = { command, "--stack", stack.name }
  opts = opts or {}
  if type(opts) ~= "table" then
    error(string.format("%s: expected a table for 'opts', got %s", call, type(opts)), 3)
  end
  if opts.yes then
    args[#args + 1] = "--yes"
  end
  if opts.skip_preview then
    args[#args + 1] = "--skip-preview"
  end
  if opts.non_interactive then
    args[#args + 1] = "--non-interactive"
  end
  if opts.config ~= nil then
    local keys = {}
    for key in pairs(opts.config) do
      keys[#keys + 1] = tostring(key)
    end
    table.sort(keys)
    for _, key in ipairs(keys) do
      args[#args + 1] = "--config"
      args[#args + 1] = key .. "=" .. config_value(call, key, opts.config[key])
    end
  end
  for i, arg in ipairs(opts.args or {}) do
    args[#args + 1] = tool.text(call, "args[" .. i .. "]", arg)
  end
  return stack_run(stack, call, args)
end

--- `pulumi up --stack NAME …`.
function Stack:up(opts)
  return update(self, "up", opts)
end

--- `pulumi preview --stack NAME …`.
function Stack:preview(opts)
  return update(self, "preview", opts)
end

--- `pulumi destroy --stack NAME …`.
function Stack:destroy(opts)
  return update(self, "destroy", opts)
end

--- `pulumi refresh --stack NAME …`.
function Stack:refresh(opts)
  return update(self, "refresh", opts)
end

--- `pulumi stack output --json --stack NAME`, parsed.
function Stack:outputs()
  local result, err = stack_run(self, "stack:outputs", { "stack", "output", "--json", "--stack", self.name })
  if err then
    return nil, err
  end
  local text = result.stdout
  local value, parse_err = tool.parse_json("stack:outputs", result, text)
  if parse_err and text:find("{", 1, true) then
    -- Something printed before the JSON (as the Go module allowed for).
    local tail = text:sub((text:find("{", 1, true)))
    local again = data.parse_json(tail)
    if again ~= nil then
      return again, nil
    end
  end
  return value, parse_err
end

--- `pulumi config set --stack NAME [--secret] -- KEY VALUE` (a table value as JSON).
function Stack:config(key, value, secret)
  tool.check_string("stack:config", "key", key)
  local args = { "config", "set", "--stack", self.name }
  if secret then
    args[#args + 1] = "--secret"
  end
  table.move({ "--", key, config_value("stack:config", key, value) }, 1, 3, #args + 1, args)
  return chained(self, "stack:config", args)
end

--- `stack:config` for every key of `values`, in sorted order; stops at the first failure.
function Stack:config_map(values)
  if type(values) ~= "table" then
    error("stack:config_map: expected a table for 'values', got " .. type(values), 2)
  end
  local keys = {}
  for key in pairs(values) do
    if type(key) ~= "string" then
      error("stack:config_map: expected string keys, got " .. type(key), 2)
    end
    keys[#keys + 1] = key
  end
  table.sort(keys)
  for _, key in ipairs(keys) do
    local result, err = self:config(key, values[key])
    if err then
      return result, err
    end
  end
  return self, nil
end

--- `pulumi stack select NAME --create`.
function Stack:select()
  return chained(self, "stack:select", { "stack", "select", self.name, "--create" })
end

--- `pulumi login [URL]` in the task's workdir.
function M.login(url)
  local args = { "login" }
  if url ~= nil then
    tool.check_string("pulumi.login", "url", url)
    args[2] = url
  end
  return run("pulumi.login", nil, args)
end

--- `pulumi plugin install KIND NAME [VERSION] --reinstall` (KIND "language" unless
--- `opts.kind` says).
function M.install_plugin(name, opts)
  tool.check_string("pulumi.install_plugin", "name", name)
  opts = opts or {}
  local kind = opts.kind or "language"
  tool.check_string("pulumi.install_plugin", "kind", kind)
  local args = { "plugin", "install", kind, name }
  if opts.version ~= nil then
    tool.check_string("pulumi.install_plugin", "version", opts.version)
    args[#args + 1] = opts.version
  end
  args[#args + 1] = "--reinstall"
  return run("pulumi.install_plugin", nil, args)
end

return M
