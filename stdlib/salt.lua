--- `salt`: the Go sloth-runner's salt module, as a thin layer over `exec` (global `salt`, or
--- `require("salt")`).
---
--- Every call runs the real `salt` or `salt-key` with an argument vector (no shell) and returns
--- `result, err`: `err` is nil on success, else an error value (`sloth.Error`) that names the
--- command and carries its stdout and stderr. A command's result carries `success`, `stdout`
--- (the text salt printed), `stderr`, and `data`: that text parsed as JSON (commands run with
--- `--out=json --static`), nil when it is not JSON. `result:result()` gives the Go module's
--- three values `stdout, stderr, err`, so `target:cmd(…):result()` reads as its examples do.
---
--- Commands run in the task's workdir with its `env`, and stop with it (timeout,
--- cancellation); a config directory given relatively resolves against the task's workdir.
local core = require("sloth.core")
local fs = require("fs")
local paths = require("sloth.paths")
local tool = require("sloth.tool")

local M = {}

local Client = {}
Client.__index = Client

local Target = {}
Target.__index = Target

local Result = {}
Result.__index = Result

--- The targeting flag of each `expr_form` (glob is salt's default: no flag).
local FORMS = {
  glob = false,
  list = "-L",
  grain = "-G",
  grain_pcre = "-P",
  pcre = "-E",
  pillar = "-I",
  pillar_pcre = "-J",
  compound = "-C",
  nodegroup = "-N",
  ipcidr = "-S",
  range = "-R",
}

--- `--config-dir=DIR` for a config option: a directory, or a config file (its directory).
local function config_dir(call, opts)
  if opts == nil then
    return nil
  end
  if type(opts) ~= "table" then
    error(string.format("%s: expected a table for 'opts', got %s", call, type(opts)), 3)
  end
  local config = opts.config or opts.config_path
  if config == nil then
    return nil
  end
  tool.check_string(call, "config", config)
  local path = tool.absolute(config)
  local stat = fs.stat(path)
  if stat and stat.type == "file" then
    return paths.dirname(path)
  end
  return path
end

--- Runs `program args...` for `call`; a `salt.Result`: the parsed JSON in `data`.
local function run(call, program, dir, args)
  local argv = { program, "--out=json" }
  if dir then
    argv[#argv + 1] = "--config-dir=" .. dir
  end
  table.move(args, 1, #args, #argv + 1, argv)
  local result, err = tool.run(argv, { call = call })
  local value = require("data").parse_json(result.stdout)
  if value ~= nil then
    result.data = value
  end
  return setmetatable(result, Result), err
end

--- The Go module's three values: `stdout, stderr, err` (nil on success).
function Result:result()
  return self.stdout, self.stderr, self.error
end

--- A client of the salt master (`{ config = DIR }`: its configuration directory, as
--- `--config-dir`; `config_path`, the documented spelling, may name the config file).
function M.client(opts)
  return setmetatable({ config = config_dir("salt.client", opts) }, Client)
end

--- Minions matching `tgt` by `expr_form` ("glob" unless said).
function Client:target(tgt, expr_form)
  tool.check_string("client:target", "tgt", tgt)
  expr_form = expr_form or "glob"
  if FORMS[expr_form] == nil then
    local names = {}
    for name in pairs(FORMS) do
      names[#names + 1] = name
    end
    table.sort(names)
    error(string.format("client:target: unknown expr_form '%s' (expected %s)", tostring(expr_form),
      table.concat(names, ", ")), 2)
  end
  return setmetatable({ client = self, target = tgt, expr_form = expr_form }, Target)
end

--- `salt.client():target(tgt, expr_form)`.
function M.target(tgt, expr_form)
  tool.check_string("salt.target", "tgt", tgt)
  return M.client():target(tgt, expr_form)
end

--- `salt --out=json --static [--config-dir=DIR] [FLAG] TGT FN ARGS...`: a table argument is
--- passed as JSON (which salt reads as YAML).
function Target:cmd(fn, ...)
  tool.check_string("target:cmd", "fn", fn)
  local args = { "--static" }
  local flag = FORMS[self.expr_form]
  if flag then
    args[#args + 1] = flag
  end
  args[#args + 1] = self.target
  args[#args + 1] = fn
  for i = 1, select("#", ...) do
    local arg = select(i, ...)
    if type(arg) == "table" then
      local text, reason = require("data").to_json(arg)
      if text == nil then
        error(string.format("target:cmd: argument %d has no JSON form: %s", i, reason), 2)
      end
      args[#args + 1] = text
    else
      args[#args + 1] = tool.text("target:cmd", "argument " .. i, arg)
    end
  end
  local result, err = run("target:cmd", "salt", self.client.config, args)
  self.last = result
  return result, err
end

--- `target:cmd("test.ping")`: `data` maps each minion that answered to true.
function Target:ping()
  return self:cmd("test.ping")
end

--- The last command's `stdout, stderr, err`, as the Go module's `result()` gave them.
function Target:result()
  if self.last == nil then
    return "", "", nil
  end
  return self.last:result()
end

M.key = {}

--- The names in every list of a salt-key JSON document, sorted.
local function names_in(value)
  local names = {}
  if type(value) == "table" then
    for _, list in pairs(value) do
      if type(list) == "table" then
        for _, name in ipairs(list) do
          names[#names + 1] = tostring(name)
        end
      end
    end
  end
  table.sort(names)
  return names
end

--- `salt-key --out=json --list=all`: `{ minions, minions_pre, minions_rejected, minions_denied }`
--- (each a list of minion IDs, empty when there are none).
function M.key.list(opts)
  local call = "salt.key.list"
  local result, err = run(call, "salt-key", config_dir(call, opts), { "--list=all" })
  if err then
    return nil, err
  end
  local keys, parse_err = tool.parse_json(call, result, result.stdout)
  if parse_err then
    return nil, parse_err
  end
  for _, state in ipairs({ "minions", "minions_pre", "minions_rejected", "minions_denied" }) do
    keys[state] = keys[state] or {}
  end
  return keys, nil
end

--- `salt-key --out=json --yes ACTION ID`; the result's `minions` lists the IDs it acted on.
local function key_action(call, flag, id, opts)
  tool.check_string(call, "id", id)
  local result, err = run(call, "salt-key", config_dir(call, opts), { "--yes", flag })
  result.minions = names_in(result.data)
  return result, err
end

--- Accepts the pending key of minion `id` (`salt-key -a`, which takes a glob).
function M.key.accept(id, opts)
  return key_action("salt.key.accept", "--accept=" .. tostring(id), id, opts)
end

--- Deletes the key of minion `id` (`salt-key -d`, which takes a glob).
function M.key.delete(id, opts)
  return key_action("salt.key.delete", "--delete=" .. tostring(id), id, opts)
end

--- Waits for a pending key (of minion `opts.id`, or any) and accepts it; its minion ID.
--- Polls `salt-key --list=pre` every `opts.interval` seconds (default 2) for at most
--- `opts.timeout` (seconds or a duration such as "5m"; default 300).
function M.key.wait_and_accept(opts)
  local call = "salt.key.wait_and_accept"
  opts = opts or {}
  if type(opts) ~= "table" then
    error(call .. ": expected a table for 'opts', got " .. type(opts), 2)
  end
  local function seconds(name, default)
    local value = opts[name]
    if value == nil then
      return default
    end
    if type(value) == "string" then
      local parsed, reason = core.parse_duration(value)
      if parsed == nil then
        error(string.format("%s: invalid '%s': %s", call, name, reason), 3)
      end
      return parsed
    end
    if type(value) ~= "number" or value < 0 then
      error(string.format("%s: expected a non-negative number of seconds for '%s'", call, name), 3)
    end
    return value
  end
  local timeout, interval = seconds("timeout", 300), seconds("interval", 2)
  if opts.id ~= nil then
    tool.check_string(call, "id", opts.id)
  end
  local dir = config_dir(call, { config = opts.config, config_path = opts.config_path })
  local deadline = core.now() + timeout
  while true do
    local result, err = run(call, "salt-key", dir, { "--list=pre" })
    if err then
      return nil, err
    end
    local pending, parse_err = tool.parse_json(call, result, result.stdout)
    if parse_err then
      return nil, parse_err
    end
    for _, name in ipairs(type(pending) == "table" and type(pending.minions_pre) == "table" and pending.minions_pre or {}) do
      if opts.id == nil or name == opts.id then
        local accepted, accept_err = key_action(call, "--accept=" .. name, name, { config = dir })
        if accept_err then
          return nil, accept_err
        end
        if #accepted.minions == 0 then
          return nil, core.error_value("exit", string.format("salt-key accepted no key for '%s': %s", name,
            (accepted.stdout .. accepted.stderr):gsub("%s+$", "")), { call = call, command = accepted.command,
            stdout = accepted.stdout, stderr = accepted.stderr })
        end
        return name, nil
      end
    end
    local left = deadline - core.now()
    if left <= 0 then
      local which = opts.id and string.format("of minion '%s'", opts.id) or ""
      return nil, core.error_value("timeout", string.format("no pending key%s within %s", which == "" and "" or " " .. which,
        core.format_duration(timeout)), { call = call, timed_out = true })
    end
    core.sleep(math.min(interval, left))
  end
end

return M
