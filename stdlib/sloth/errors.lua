--- Errors the engine raises on purpose, told apart from bugs, and the errors native functions
--- raise (`sloth.Error`, see lua/globals.lua): decisions read their `kind` and `cause`, never
--- their text.
---
--- A validation error (exit 2, nothing ran) carries every problem found, each naming the file,
--- group, task and field it is about.
local M = {}

local Validation = {}
Validation.__index = Validation
Validation.__tostring = function(self)
  return table.concat(self.messages, "\n")
end

---@param messages string[]
function M.validation(messages)
  return setmetatable({ kind = "validation", messages = messages }, Validation)
end

---@param message string
function M.raise_validation(message)
  error(M.validation({ message }), 0)
end

function M.is_validation(err)
  return getmetatable(err) == Validation
end

--- Whether `err` is an error value a native function raised or returned (`sloth.Error`).
---@param err any
---@return boolean
function M.is_native(err)
  if type(err) ~= "table" then
    return false
  end
  local meta = getmetatable(err)
  return type(meta) == "table" and meta.__name == "sloth.Error"
end

--- What a native function's failure was (`"unreachable"`, `"conflict"`, …: `sloth.ErrorKind`),
--- nil for any other error.
---@param err any
---@return string?
function M.kind(err)
  return M.is_native(err) and err.kind or nil
end

--- What a native function's failed connection or refused call came down to
--- (`sloth.ErrorCause`), nil when unknown or for any other error.
---@param err any
---@return string?
function M.cause(err)
  return M.is_native(err) and err.cause or nil
end

--- The message of an error, for people: a native function's error value says it without the
--- function's name; any other error (Lua's own, a native function's complaint about how it was
--- called) loses the host's decorations ("runtime error: ", the `module.function: ` prefix)
--- and the traceback.
---@param err any
---@return string
function M.clean(err)
  if M.is_native(err) then
    return err.message
  end
  local text = tostring(err)
  text = text:gsub("^runtime error: ", "")
  text = text:gsub("^[%a_]+%.[%a_]+: ", "")
  local cut = text:find("\n%s*stack traceback:")
  if cut then
    text = text:sub(1, cut - 1)
  end
  return text
end

--- "file: group 'g', task 't': field 'f': problem" with the parts that are known.
---@param where { file: string, group?: string, task?: string|integer, field?: string }
---@param problem string
function M.locate(where, problem)
  local parts = {}
  if where.group then
    parts[#parts + 1] = string.format("group '%s'", where.group)
  end
  if type(where.task) == "string" then
    parts[#parts + 1] = string.format("task '%s'", where.task)
  elseif type(where.task) == "number" then
    parts[#parts + 1] = string.format("task #%d", where.task)
  end
  local head = where.file
  if #parts > 0 then
    head = head .. ": " .. table.concat(parts, ", ")
  end
  if where.field then
    head = head .. string.format(": field '%s'", where.field)
  end
  return head .. ": " .. problem
end

return M
