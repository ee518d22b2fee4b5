--- Running a command-line tool for a stdlib module over `exec` (python, pulumi, salt): the
--- result table and the error value their calls return, as `git` does — the error names the
--- call and the command and keeps its stdout and stderr; a tool that is not installed is said
--- in those words. Commands run in the task's workdir (or `cwd`), with its `env`, and stop with
--- the task (timeout, cancellation), as `exec.run` does.
local core = require("sloth.core")
local exec = require("exec")
local paths = require("sloth.paths")

local M = {}

--- `path` as an absolute path, relative to the running task's workdir.
function M.absolute(path)
  local context = core.context()
  return paths.absolute(path, context and context.workdir or nil)
end

--- The value of environment variable `name` a command of the running task sees: the task's
--- `env` first, then this process's.
function M.getenv(name)
  local context = core.context()
  local env = context and context.env
  if type(env) == "table" and env[name] ~= nil then
    return tostring(env[name])
  end
  return os.getenv(name)
end

--- Raises (at the caller's caller) unless `value` is a non-empty string.
function M.check_string(call, name, value)
  if type(value) ~= "string" or value == "" then
    error(string.format("%s: expected a non-empty string for '%s', got %s", call, name,
      value == "" and "an empty string" or type(value)), 3)
  end
end

--- An argument as a command receives it: strings as they are, numbers and booleans as Lua
--- prints them; anything else raises naming `what`.
function M.text(call, what, value)
  local kind = type(value)
  if kind == "string" then
    return value
  elseif kind == "number" or kind == "boolean" then
    return tostring(value)
  end
  error(string.format("%s: expected a string, number or boolean for %s, got %s", call, what, kind), 3)
end

--- A word as a shell would need it to read it back: quoted only when it has to be.
local function quote(word)
  if word ~= "" and not word:find("[^%w%-_./:=@,+%%]") then
    return word
  end
  return "'" .. word:gsub("'", "'\\''") .. "'"
end

--- An argument vector as one line, for messages (`pip install 'a b'`).
function M.show(argv)
  local words = {}
  for i, word in ipairs(argv) do
    words[i] = quote(word)
  end
  return table.concat(words, " ")
end

--- Runs `argv` (no shell) and returns the result table and the error value (nil on success).
--- `opts`: `call` (who asks, as scripts call it), `cwd` (absolute; nil: the task's workdir),
--- `env` (added to the task's), `tool` (the name a missing program is said as; default
--- argv[1]), `missing` (a message to say instead when the program does not exist), `shown`
--- (the command as messages say it; default argv). The result: `success`, `stdout`,
--- `stderr`, `command`, and `code` (the exit code; nil when killed).
function M.run(argv, opts)
  local call = opts.call
  local shown = opts.shown or M.show(argv)
  local dir = opts.cwd
  if dir and not core.is_dir(dir) then
    local err = core.error_value("io", string.format("%s is not a directory", dir),
      { call = call, path = dir, command = shown })
    return { success = false, stdout = "", stderr = "", command = shown, error = err }, err
  end
  local stdout, stderr, failure = exec.run(argv, { cwd = dir, env = opts.env })
  local result = { success = failure == nil, stdout = stdout, stderr = stderr, command = shown,
    code = failure == nil and 0 or failure.code }
  if failure == nil then
    return result, nil
  end
  local err
  if failure.not_found then
    local message = opts.missing
      or string.format("`%s` is not installed (needed by %s)", opts.tool or argv[1], call)
    err = core.error_value("io", message, { call = opts.missing and call or nil, code = failure.code,
      not_found = true, command = shown })
  else
    local said = stderr:gsub("%s+$", "")
    local message = string.format("%s %s", shown, tostring(failure))
    if said ~= "" then
      message = message .. ": " .. said
    end
    err = core.error_value(failure.kind, message, { call = call, code = failure.code, signal = failure.signal,
      timed_out = failure.timed_out, command = shown, stdout = stdout, stderr = stderr })
  end
  result.error = err
  return result, err
end

--- A metatable for a failed call's result whose object had `methods`: calling one of them on it
--- raises, naming the failure — a chain (`venv:create():pip(…)`) stops at its first failure.
function M.failed_meta(module, methods)
  return {
    __index = function(result, key)
      if methods[key] ~= nil then
        return function()
          error(string.format("%s: cannot call %s: the previous %s call failed: %s", module, key, module,
            tostring(rawget(result, "error"))), 2)
        end
      end
      return nil
    end,
  }
end

--- Parses JSON `text`; the value, or nil and an error value (kind "invalid") naming `call`
--- and the command that printed it.
function M.parse_json(call, result, text)
  local data = require("data")
  local value, reason = data.parse_json(text)
  if reason == nil then
    return value, nil
  end
  local shown = text:gsub("%s+$", "")
  if #shown > 200 then
    shown = shown:sub(1, 200) .. "…"
  end
  return nil, core.error_value("invalid", string.format("%s printed no JSON (%s): %s", result.command, reason, shown),
    { call = call, command = result.command, stdout = result.stdout, stderr = result.stderr })
end

return M
