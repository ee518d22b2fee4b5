--- What the stdlib modules over a command-line tool share (git, python, pulumi, salt, gcp, aws,
--- docker, terraform): running the tool with an argument vector (no shell) through `exec`, so
--- it runs in the task's workdir (or `cwd`) with its `env` and stops with the task (timeout,
--- cancellation); the result `{ success, stdout, stderr, code, exit_code, command }` and an
--- error value that names the call and the command and keeps the tool's stdout and stderr; a
--- tool that is not installed said in those words; arguments checked into error values.
local core = require("sloth.core")
local data = require("data")
-- Taken now: a test's mock of `exec.run` leaves the tool modules alone (mock `git.clone`).
local exec_run = require("exec").run
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
--- `stderr`, `command`, `code` (the exit code; nil when killed) and `exit_code` (-1 when the
--- program did not exit by itself).
function M.run(argv, opts)
  local call = opts.call
  local shown = opts.shown or M.show(argv)
  local dir = opts.cwd
  if dir and not core.is_dir(dir) then
    local err = core.error_value("io", string.format("%s is not a directory", dir),
      { call = call, path = dir, command = shown })
    return { success = false, stdout = "", stderr = "", command = shown, error = err }, err
  end
  local stdout, stderr, failure = exec_run(argv, { cwd = dir, env = opts.env })
  -- exit_code: -1 when the program did not exit by itself (not started, killed, timed out),
  -- as the Go modules had it.
  local result = { success = failure == nil, stdout = stdout, stderr = stderr, command = shown,
    code = failure == nil and 0 or failure.code,
    exit_code = failure == nil and 0 or (failure.kind == "exit" and failure.code or -1) }
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
    local said = stderr:match("^%s*(.-)%s*$")
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

--- An "invalid" error value for `call`, about its argument `field`: `nil, err`.
function M.invalid(call, field, message)
  return nil, core.error_value("invalid", message, { call = call, field = field })
end

--- What a value is, for messages.
local function describe(value)
  if value == "" then
    return "an empty string"
  end
  return type(value)
end

--- The parameters table of `call`, or `nil, err`.
function M.params(call, params)
  if type(params) ~= "table" then
    return M.invalid(call, nil, string.format("expected a table of parameters, got %s", type(params)))
  end
  return params
end

--- `params[field]` as a non-empty string (a number is taken as its text), or `nil, err`.
function M.required(call, params, field)
  local value = params[field]
  if type(value) == "number" then
    return tostring(value)
  end
  if value == nil then
    return M.invalid(call, field, string.format("'%s' is required", field))
  end
  if type(value) ~= "string" or value == "" then
    return M.invalid(call, field, string.format("expected a non-empty string for '%s', got %s", field, describe(value)))
  end
  return value
end

--- `params[field]` as a string when given (nil or "" when not: absent), or `nil, err`.
function M.optional(call, params, field)
  local value = params[field]
  if value == nil or value == "" then
    return false
  end
  if type(value) == "number" then
    return tostring(value)
  end
  if type(value) ~= "string" then
    return M.invalid(call, field, string.format("expected a string for '%s', got %s", field, type(value)))
  end
  return value
end

--- `value` as a list of strings (numbers as their text), or `nil, err`; nil is an empty list
--- unless `required`.
function M.strings(call, field, value, required)
  if value == nil and not required then
    return {}
  end
  if type(value) ~= "table" or (required and #value == 0) then
    return M.invalid(call, field, string.format("expected a %slist of strings for '%s', got %s",
      required and "non-empty " or "", field, type(value) == "table" and "an empty table" or type(value)))
  end
  local list = {}
  for i, item in ipairs(value) do
    if type(item) ~= "string" and type(item) ~= "number" then
      return M.invalid(call, field, string.format("expected a string for '%s[%d]', got %s", field, i, type(item)))
    end
    list[i] = tostring(item)
  end
  return list
end

--- A `{ NAME = value }` table as `NAME=value` strings, sorted by name (the same command every
--- time), or `nil, err`.
function M.assignments(call, field, value)
  if value == nil then
    return {}
  end
  if type(value) ~= "table" then
    return M.invalid(call, field, string.format("expected a table for '%s', got %s", field, type(value)))
  end
  local names = {}
  for name, item in pairs(value) do
    if type(name) ~= "string" or (type(item) ~= "string" and type(item) ~= "number" and type(item) ~= "boolean") then
      return M.invalid(call, field, string.format("expected '%s' to map names to strings, got %s = %s", field,
        tostring(name), type(item)))
    end
    names[#names + 1] = name
  end
  table.sort(names)
  for i, name in ipairs(names) do
    names[i] = name .. "=" .. tostring(value[name])
  end
  return names
end

--- A reader of `call`'s parameters table: each read gives the value, and the first problem
--- (the table itself, a missing or wrong field) is kept in `reader.err` — an "invalid" error
--- value naming the call and the field; reads after it give nothing. A call reads every field
--- it needs, then returns `nil, reader.err` when there is one.
local Reader = {}
Reader.__index = Reader

function M.reader(call, params)
  local reader = setmetatable({ call = call, params = {} }, Reader)
  local _, err = M.params(call, params)
  if err then
    reader.err = err
  else
    reader.params = params
  end
  return reader
end

--- Keeps the first problem; the value (nil once there is one).
local function take(reader, value, err)
  if err ~= nil and reader.err == nil then
    reader.err = err
  end
  if reader.err ~= nil then
    return nil
  end
  return value
end

--- A non-empty string field (a number as its text).
function Reader:required(field)
  return take(self, M.required(self.call, self.params, field))
end

--- A string field when given; false when absent or "".
function Reader:optional(field)
  return take(self, M.optional(self.call, self.params, field))
end

--- The first of `fields` that is given, required (names the first when none is).
function Reader:either(...)
  for _, field in ipairs({ ... }) do
    if self.params[field] ~= nil then
      return self:required(field)
    end
  end
  return self:required((...))
end

--- A list of strings (`{}` when absent unless `required`).
function Reader:strings(field, required)
  return take(self, M.strings(self.call, field, self.params[field], required))
end

--- A `{ NAME = value }` field as sorted `NAME=value` strings.
function Reader:assignments(field)
  return take(self, M.assignments(self.call, field, self.params[field]))
end

--- A command's stdout parsed as JSON, or `nil, err` (see `parse_json`).
function M.decode(call, result)
  return M.parse_json(call, result, result.stdout)
end

--- stdout parsed, when it is a JSON array or object; nil otherwise.
function M.json_of(stdout)
  if not stdout:find("^%s*[%[{]") then
    return nil
  end
  local value, problem = data.parse_json(stdout)
  if problem ~= nil then
    return nil
  end
  return value
end

--- `result` (a failed call's) with `failed_meta`: calling one of `methods` on it raises.
function M.failed(result, methods, module)
  return setmetatable(result, M.failed_meta(module, methods))
end

return M
