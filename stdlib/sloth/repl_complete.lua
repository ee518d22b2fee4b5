--- What Tab completes at the REPL's prompt: `:` commands; global names and Lua's keywords;
--- after `a.b.` or `a:`, the fields of the table that path reaches (and of its metatable's
--- `__index` table: a string's methods, an object's). Nothing is called on the way: no
--- `__index` function, no `__pairs`.
local commands = require("sloth.repl_commands")

local M = {}

local KEYWORDS = require("sloth.repl").KEYWORDS

--- The table whose fields follow `value` (a table itself, or the `__index` table of its
--- metatable), or nil.
local function fields_of(value, seen)
  local kind = type(value)
  local own = kind == "table" and value or nil
  local meta = (kind == "table" or kind == "userdata" or kind == "string") and getmetatable(value)
  local index = type(meta) == "table" and rawget(meta, "__index")
  if type(index) ~= "table" then
    index = nil
  end
  return own, index
end

-- Globals loaded on first use (`git`, …): their names complete before they are loaded, and
-- completing inside one loads it (a stdlib module: nothing of the user's runs).
local LAZY_GLOBALS = require("sloth.lazy_globals")

--- `value`'s field `name`, raw, then through its metatable's `__index` table.
local function field(value, name)
  local own, index = fields_of(value)
  local found = own and rawget(own, name)
  if found == nil and value == _G and LAZY_GLOBALS[name] then
    found = require(LAZY_GLOBALS[name])
  end
  if found == nil and index then
    found = rawget(index, name)
  end
  return found
end

local function add_names(into, seen, from, prefix, methods_only)
  if type(from) ~= "table" then
    return
  end
  for key, value in next, from do
    if type(key) == "string" and key:match("^[%a_][%w_]*$") and key:sub(1, #prefix) == prefix and not seen[key]
      and (not methods_only or type(value) == "function") then
      seen[key] = true
      into[#into + 1] = key
    end
  end
end

--- The start (0-based byte offset in `line`) of the word before `pos`, and what it can become.
---@param line string
---@param pos integer the cursor, a 0-based byte offset
---@return integer start, string[] candidates
function M.candidates(line, pos)
  local before = line:sub(1, pos)
  -- `:he` → `:help`, at the start of the line.
  local command = before:match("^%s*:(%a*)$")
  if command then
    local found = {}
    for _, entry in ipairs(commands.COMMANDS) do
      if entry.name:sub(1, #command) == command then
        found[#found + 1] = entry.name
      end
    end
    table.sort(found)
    return pos - #command, found
  end
  -- A command's arguments: nothing here (file names for `:load` come from the editor).
  if before:match("^%s*:%a") then
    return pos, {}
  end
  local path = before:match("[%a_][%w_%.:]*$") or ""
  local ahead = before:sub(#before - #path, #before - #path)
  -- Nothing typed (Tab to indent), or a name after an expression this cannot evaluate
  -- (`t[1].pr`, `f():x`), or inside a string or a number.
  if path == "" or (#path < #before and ahead:match("[%.:%)%]\"'%w]")) then
    return pos, {}
  end
  local parts, separators = {}, {}
  for separator, name in ("." .. path):gmatch("([%.:])([%w_]*)") do
    separators[#separators + 1] = separator
    parts[#parts + 1] = name
  end
  local prefix = table.remove(parts)
  local methods_only = separators[#separators] == ":"
  local found, seen = {}, {}
  if #parts == 0 then
    add_names(found, seen, _G, prefix)
    add_names(found, seen, LAZY_GLOBALS, prefix)
    for _, word in ipairs(KEYWORDS) do
      if word:sub(1, #prefix) == prefix and not seen[word] then
        found[#found + 1] = word
      end
    end
  else
    local value = _G
    for _, name in ipairs(parts) do
      value = field(value, name)
      if value == nil then
        return pos, {}
      end
    end
    local own, index = fields_of(value)
    add_names(found, seen, own, prefix, methods_only)
    add_names(found, seen, index, prefix, methods_only)
  end
  table.sort(found)
  return pos - #prefix, found
end

return M
