--- The interactive REPL's evaluation: a chunk is tried as an expression first (so `1 + 1`
--- prints 2), then as statements; an unfinished chunk asks for more lines. Results are printed
--- readably, tables included. Everything a pipeline has is here: `log`, `exec`, `agent`,
--- `workspace`, `fs`, `data`, `values`, `import`, and `run(file[, opts])` to run a pipeline.
local M = {}

--- A readable rendering of a value; tables are expanded to `depth` levels, keys sorted.
---@param value any
---@param depth? integer
function M.show(value, depth, indent, seen)
  depth, indent, seen = depth or 3, indent or "", seen or {}
  if type(value) == "string" then
    return (string.format("%q", value):gsub("\\\n", "\\n"))
  end
  if type(value) ~= "table" or getmetatable(value) and getmetatable(value).__tostring then
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
  local keys = {}
  for k in pairs(value) do
    keys[#keys + 1] = k
  end
  table.sort(keys, function(a, b)
    if type(a) == type(b) and (type(a) == "number" or type(a) == "string") then
      return a < b
    end
    return type(a) < type(b)
  end)
  local inner = indent .. "  "
  local lines = {}
  for _, k in ipairs(keys) do
    local label = type(k) == "string" and k:match("^[%a_][%w_]*$") and k or "[" .. M.show(k, 0) .. "]"
    lines[#lines + 1] = inner .. label .. " = " .. M.show(value[k], depth - 1, inner, seen) .. ","
  end
  seen[value] = nil
  return "{\n" .. table.concat(lines, "\n") .. "\n" .. indent .. "}"
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

--- Evaluates `source`; returns "incomplete" when more lines are needed, else "done".
---@param source string
---@return "incomplete"|"done"
function M.eval(source)
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
    local shown = {}
    for i = 2, results.n do
      shown[#shown + 1] = M.show(results[i])
    end
    io.stdout:write(table.concat(shown, "\t"), "\n")
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
