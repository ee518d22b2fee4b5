--- What the modules over a vendor's command-line tool (`gcp`, `aws`, `docker`, `terraform`)
--- share: running the tool with an argument vector (no shell) through `exec`, so it runs in
--- the task's workdir with its `env` and stops with it (timeout, cancellation); the result
--- `{ success, stdout, stderr, exit_code, command }` and an error value that names the call
--- and the command and keeps the tool's stdout and stderr; a tool that is not installed said
--- as such; arguments checked into error values rather than raised.
local core = require("sloth.core")
local data = require("data")
local exec = require("exec")
local paths = require("sloth.paths")

local M = {}

--- `arg` as a shell would need it to read it back (for messages only: nothing runs a shell).
function M.quote(arg)
  if arg ~= "" and not arg:find("[^%w%-%._/:=@,+%%]") then
    return arg
  end
  return "'" .. arg:gsub("'", [['\'']]) .. "'"
end

--- The command line `argv` reads as.
function M.show(argv)
  local shown = {}
  for i, arg in ipairs(argv) do
    shown[i] = M.quote(arg)
  end
  return table.concat(shown, " ")
end

--- `path` as an absolute path, relative to the running task's workdir.
function M.absolute(path)
  local context = core.context()
  return paths.absolute(path, context and context.workdir or nil)
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

--- Runs `argv` (its program first) in `dir` (nil: the task's workdir) for `call`: the result
--- `{ success, stdout, stderr, exit_code, command, error? }` and the error value (nil on
--- success). `exit_code` is -1 when the program did not exit by itself (not started, killed,
--- timed out), as the Go module had it.
function M.run(call, argv, dir)
  local shown = M.show(argv)
  local result = { success = false, stdout = "", stderr = "", exit_code = -1, command = shown }
  if dir and not core.is_dir(dir) then
    local err = core.error_value("io", string.format("%s is not a directory", dir), { call = call, path = dir, command = shown })
    result.error = err
    return result, err
  end
  local stdout, stderr, failure = exec.run(argv, { cwd = dir })
  result.stdout, result.stderr = stdout, stderr
  if failure == nil then
    result.success, result.exit_code = true, 0
    return result, nil
  end
  local err
  if failure.not_found then
    err = core.error_value("io", string.format("`%s` is not installed (needed by %s)", argv[1], call),
      { code = failure.code, not_found = true, command = shown })
  else
    if failure.kind == "exit" then
      result.exit_code = failure.code
    end
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

--- A command's stdout parsed as JSON, or `nil, err` ("invalid", naming the command and
--- keeping its output).
function M.decode(call, result)
  local value, problem = data.parse_json(result.stdout)
  if problem ~= nil then
    return nil, core.error_value("invalid", string.format("%s printed what is not JSON: %s", result.command, problem),
      { call = call, command = result.command, stdout = result.stdout, stderr = result.stderr })
  end
  return value
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

--- A failed call's result, on which calling one of `methods` raises naming the failure (a
--- chain stops at its first failure, as the Go modules' raising did).
function M.failed(result, methods, module)
  return setmetatable(result, {
    __index = function(failed, key)
      if methods[key] ~= nil then
        return function()
          error(string.format("%s: cannot call %s: the previous %s call failed: %s", module, key, module,
            tostring(rawget(failed, "error"))), 2)
        end
      end
      return nil
    end,
  })
end

return M
