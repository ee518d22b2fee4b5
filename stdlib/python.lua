--- `python`: the Go sloth-runner's python module — virtual environments — as a thin layer over
--- `exec` (global `python`, or `require("python")`).
---
--- `python.venv(path)` names a virtual environment (nothing is made until `:create()`). Its
--- commands run with an argument vector (no shell) and return `result, err`: `err` nil on
--- success, else an error value (`sloth.Error`) that names the command and carries its stdout
--- and stderr. As in the Go module, `stdout` and `stderr` of a result are trimmed of surrounding
--- whitespace (the error value keeps them as printed). `create` and `pip` return the venv (so
--- calls chain, as in the Go examples) with that command's `success`, `stdout`, `stderr` and
--- `exit_code`; when one fails they return a failed result instead, on which a chained method
--- raises naming the failure. `exec` returns a result table, as in the Go code.
---
--- Paths resolve against the running task's workdir; the venv keeps its absolute path, so it
--- can be handed to another task (or to `pulumi.stack{ venv = … }`). Commands run in the task's
--- workdir with its `env`, and stop with it (timeout, cancellation).
local fs = require("fs")
local tool = require("sloth.tool")

local M = {}

local Venv = {}
Venv.__index = Venv

local Failed = tool.failed_meta("python", Venv)

local function trim(text)
  return (text:gsub("^%s+", ""):gsub("%s+$", ""))
end

--- Arguments as the Go module took them (one string, split at whitespace) or as a list, each
--- element one argument as it is.
local function arguments(call, args)
  local out = {}
  if type(args) == "string" then
    for word in args:gmatch("%S+") do
      out[#out + 1] = word
    end
  elseif type(args) == "table" then
    for i, arg in ipairs(args) do
      out[#out + 1] = tool.text(call, "argument " .. i, arg)
    end
  elseif args ~= nil then
    error(string.format("%s: expected a string or a list of arguments for 'args', got %s", call, type(args)), 3)
  end
  return out
end

--- Runs a command and turns its result into the Go module's shape (trimmed output, exit_code).
local function run(call, argv, opts)
  opts = opts or {}
  opts.call = call
  local result, err = tool.run(argv, opts)
  result.stdout, result.stderr = trim(result.stdout), trim(result.stderr)
  result.exit_code = result.code
  result.code = nil
  return result, err
end

--- The venv after a command: it carries the result, or the failed result is returned.
local function settle(venv, result, err)
  venv.success, venv.stdout, venv.stderr, venv.exit_code = result.success, result.stdout, result.stderr,
    result.exit_code
  venv.last, venv.last_error = result, err
  if err then
    result.path = venv.path
    return setmetatable(result, Failed), err
  end
  return venv, nil
end

--- A program of the venv (`bin/pip`, `bin/python`): a venv not created yet is said as such.
local function program(venv, name)
  local path = venv.path .. "/bin/" .. name
  return path, string.format("%s does not exist (is the venv created? venv:create())", path)
end

--- A virtual environment at `path` (relative to the task's workdir); nothing is made yet.
function M.venv(path)
  tool.check_string("python.venv", "path", path)
  return setmetatable({ path = tool.absolute(path), success = true, stdout = "", stderr = "" }, Venv)
end

--- Whether the venv exists (its `bin/activate` is there), as the Go module checks it.
function Venv:exists()
  return fs.exists(self.path .. "/bin/activate")
end

--- `python3 -m venv PATH` (`{ python = "python3.12" }`: another interpreter).
function Venv:create(opts)
  local python = opts and opts.python or "python3"
  tool.check_string("venv:create", "python", python)
  return settle(self, run("venv:create", { python, "-m", "venv", self.path }))
end

--- `bin/pip args...`: a string is split at whitespace (as the Go module did); a list is passed
--- as it is, one element an argument.
function Venv:pip(args)
  local argv = arguments("venv:pip", args)
  local pip, missing = program(self, "pip")
  table.insert(argv, 1, pip)
  return settle(self, run("venv:pip", argv, { missing = missing }))
end

--- `bin/python args...` (a string split at whitespace, or a list): its result, not the venv.
function Venv:exec(args)
  local argv = arguments("venv:exec", args)
  local python, missing = program(self, "python")
  table.insert(argv, 1, python)
  local result, err = run("venv:exec", argv, { missing = missing })
  self.last, self.last_error = result, err
  return result, err
end

--- The last command's result (`{ success, stdout, stderr, exit_code, command }`) and its error.
function Venv:result()
  return self.last or { success = true, stdout = "", stderr = "", exit_code = 0 }, self.last_error
end

return M
