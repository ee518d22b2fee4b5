--- The interactive REPL's evaluation: a chunk is tried as an expression first (so `1 + 1`
--- prints 2), then as statements; an unfinished chunk asks for more lines. Results are printed
--- readably, tables included. Everything a pipeline has is here: `log`, `exec`, `agent`,
--- `workspace`, `fs`, `data`, `values`, `import`, and `run(file[, opts])` to run a pipeline.
local M = {}

--- Entries a table shows before it says how many more there are.
M.MAX_ENTRIES = 50
--- A table fits on one line up to this width.
local ONE_LINE = 72

--- Lua's reserved words, in order (Tab offers them; a key spelt as one needs brackets).
M.KEYWORDS = {}
local KEYWORDS = {}
for word in ("and break do else elseif end false for function goto if in local nil not or repeat return then true until while"):gmatch("%a+") do
  M.KEYWORDS[#M.KEYWORDS + 1] = word
  KEYWORDS[word] = true
end

local function key_label(key)
  if type(key) == "string" and key:match("^[%a_][%w_]*$") and not KEYWORDS[key] then
    return key
  end
  return "[" .. M.show(key, 0) .. "]"
end

local function key_order(a, b)
  local ta, tb = type(a), type(b)
  if ta == tb and (ta == "number" or ta == "string") then
    return a < b
  end
  if ta == tb and ta == "boolean" then
    return not a and b
  end
  if ta == tb then
    -- (By address: tostring would call a key's __tostring.)
    return string.format("%p", a) < string.format("%p", b)
  end
  return ta < tb
end

--- A string as Lua source, which also keeps the terminal safe: control characters escaped
--- (`%q` does C0), and so are C1 controls and bytes that are not UTF-8.
local function quote(text)
  local quoted = string.format("%q", text):gsub("\\\n", "\\n")
  if not quoted:find("[\128-\255]") then
    return quoted
  end
  if utf8.len(quoted) then
    -- Valid UTF-8: only the C1 controls (U+0080 to U+009F, \xC2\x80 to \xC2\x9F).
    return (quoted:gsub("\194([\128-\159])", function(byte)
      return string.format("\\194\\%d", byte:byte())
    end))
  end
  return (quoted:gsub("[\128-\255]", function(byte)
    return string.format("\\%d", byte:byte())
  end))
end

--- A readable rendering of a value, as Lua would read it back where it can: strings quoted,
--- a table's sequence first (`{ 1, 2, 3 }`), then its other keys sorted; short tables on one
--- line, longer ones indented; `depth` levels deep (`{...}` below), a table met again on the
--- way down as `<cycle>`, past `MAX_ENTRIES` entries a count of the rest. Metamethods are not
--- called (a table with `__tostring` shows as that).
---@param value any
---@param depth? integer
function M.show(value, depth, indent, seen)
  depth, indent, seen = depth or 3, indent or "", seen or {}
  if type(value) == "string" then
    return quote(value)
  end
  local meta = type(value) == "table" and getmetatable(value)
  if type(value) ~= "table" or (type(meta) == "table" and rawget(meta, "__tostring")) then
    return tostring(value)
  end
  if seen[value] then
    return "<cycle>"
  end
  if next(value) == nil then
    return "{}"
  end
  if depth == 0 then
    return "{...}"
  end
  seen[value] = true
  local inner = indent .. "  "
  local items, total = {}, 0
  -- The sequence: 1, 2, ... up to the first hole (not `#`, whose border may lie far out).
  local length = 0
  while rawget(value, length + 1) ~= nil do
    length = length + 1
  end
  for i = 1, length do
    total = total + 1
    if #items < M.MAX_ENTRIES then
      items[#items + 1] = M.show(rawget(value, i), depth - 1, inner, seen)
    end
  end
  local positional = #items
  local keys = {}
  for key in next, value do
    if not (math.type(key) == "integer" and key >= 1 and key <= length) then
      keys[#keys + 1] = key
    end
  end
  table.sort(keys, key_order)
  for _, key in ipairs(keys) do
    total = total + 1
    if #items < M.MAX_ENTRIES then
      items[#items + 1] = key_label(key) .. " = " .. M.show(rawget(value, key), depth - 1, inner, seen)
    end
  end
  seen[value] = nil
  local more = total > #items and string.format("… %d more", total - #items) or nil
  local line = "{ " .. table.concat(items, ", ") .. (more and (", " .. more) or "") .. " }"
  if #line + #indent <= ONE_LINE and not line:find("\n", 1, true) then
    return line
  end
  if more then
    items[#items + 1] = more
  end
  -- A sequence's entries that each fit on a line share lines, as many as fit; keyed entries
  -- and nested tables that span lines get a line of their own.
  local lines, current, current_shares = {}, nil, false
  for i, item in ipairs(items) do
    local piece = item .. (i < #items and "," or "")
    local shares = i <= positional and not item:find("\n", 1, true)
    if not shares or not current or not current_shares or #current + 1 + #piece + #inner > ONE_LINE then
      if current then
        lines[#lines + 1] = current
      end
      current, current_shares = piece, shares
    else
      current = current .. " " .. piece
    end
  end
  lines[#lines + 1] = current
  return "{\n" .. inner .. table.concat(lines, "\n" .. inner) .. "\n" .. indent .. "}"
end

--- A result as the prompt prints it: a string as it is, anything else as `show` renders it.
function M.result(value)
  if type(value) == "string" then
    return value
  end
  return M.show(value)
end

local function compile(source)
  local chunk = load("return " .. source, "=repl", "t")
  if chunk then
    return chunk
  end
  return load(source, "=repl", "t")
end

--- Evaluates the file `path` (`repl FILE`): its globals are the prompt's; its imports are
--- found next to it. Returns nil, or the error (naming its file and line, with the user's
--- frames).
---@param path string
---@return string? err
function M.evaluate_file(path)
  local scripts = require("sloth.scripts")
  local chunk, err = scripts.load(path)
  if not chunk then
    return tostring(err)
  end
  local ok, run_error = pcall(scripts.run, path, chunk)
  if not ok then
    return tostring(run_error)
  end
  return nil
end

--- Evaluates `source` — all of a piped stdin — as one chunk named `stdin`; returns nil, or the
--- error (naming the line, with the user's frames). Expressions' values are not printed: it is
--- a program, as for `lua -`.
---@param source string
---@return string? err
function M.evaluate_chunk(source)
  -- As `lua -` reads it: a UTF-8 byte order mark and a first line starting with `#` (`#!`)
  -- are skipped (the line's end kept, so line numbers stay).
  source = source:gsub("^\239\187\191", "")
  if source:sub(1, 1) == "#" then
    source = source:gsub("^[^\n]*", "")
  end
  local chunk, err = load(source, "=stdin", "t")
  if not chunk then
    return tostring(err)
  end
  local ok, run_error = require("sloth.execute").call(chunk)
  if not ok then
    return tostring(run_error)
  end
  return nil
end

--- Evaluates `source` — Lua, or a `:` command (`:help`) — and returns "incomplete" when more
--- lines are needed, "quit" when it asks to leave, else "done".
---@param source string
---@return "incomplete"|"done"|"quit"
function M.eval(source)
  local commands = require("sloth.repl_commands")
  if commands.is_command(source) then
    return commands.execute(source)
  end
  local chunk, err = compile(source)
  if not chunk then
    if err:match("<eof>$") then
      return "incomplete"
    end
    io.stderr:write(err, "\n")
    return "done"
  end
  local results = table.pack(require("sloth.execute").call(chunk))
  if not results[1] then
    io.stderr:write(tostring(results[2]), "\n")
    return "done"
  end
  if results.n > 1 then
    -- Printing may run the values' own code (`__tostring`): stoppable, like any of it.
    local shown, text = require("sloth.preempt").pcall(function()
      local parts = {}
      for i = 2, results.n do
        parts[#parts + 1] = M.result(results[i])
      end
      return table.concat(parts, "\t")
    end)
    if shown then
      io.stdout:write(text, "\n")
    else
      io.stderr:write("cannot print the result: ", tostring(text), "\n")
    end
  end
  io.stdout:flush()
  return "done"
end

--- Installs the REPL's own helpers.
function M.setup()
  --- `run(file[, { groups, tasks, jobs, dry_run }])`: runs a pipeline from the REPL and
  --- returns its exit code.
  run = function(file, opts)
    opts = opts or {}
    opts.file = file
    return require("sloth.cli").run(opts)
  end
end

return M
