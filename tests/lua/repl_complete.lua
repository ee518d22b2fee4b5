-- What Tab completes at the REPL's prompt.
local complete = require("sloth.repl_complete").candidates

local function check(line, want_start, want)
  local start, found = complete(line, #line)
  local text = table.concat(found, " ")
  assert(start == want_start, line .. ": start " .. start .. ", wanted " .. want_start)
  for _, name in ipairs(want) do
    assert((" " .. text .. " "):find(" " .. name .. " ", 1, true), line .. ": no " .. name .. " in " .. text)
  end
  return found
end

-- Module members, globals, keywords.
local found = check("exec.ru", 5, { "run" })
assert(#found == 1, table.concat(found, " "))
check("x = ex", 4, { "exec" })
check("loc", 0, { "local" })
-- Stdlib globals loaded on first use complete before they are loaded, and inside.
assert(rawget(_G, "git") == nil, "git is not loaded before a script names it")
check("gi", 0, { "git" })
check("git.cl", 4, { "clone" })
assert(rawget(_G, "git") == nil and git.clone ~= nil and rawget(_G, "git") == git)
-- Fields of any table a global reaches.
TaskDefinitions = { build = { tasks = { { name = "t" } }, description = "b" } }
check("TaskDefinitions.build.t", 22, { "tasks" })
check("TaskDefinitions.bu", 16, { "build" })
-- Methods through a metatable's __index table: a string's.
s = "text"
found = check("s:", 2, { "upper", "lower", "rep" })
-- `:` commands at the start of the line.
check(":he", 1, { "help" })
found = check(":r", 1, { "run", "reload" })
-- Nothing through an __index function or into an unknown path.
local called = false
trap = setmetatable({}, { __index = function() called = true end })
check("trap.x.y", 8, {})
assert(not called)
check("nothing_here.at_all", 19, {})
-- Nothing to complete: an empty word (Tab to indent), a name after an expression, a command's
-- arguments, inside a string.
assert(#select(2, complete("", 0)) == 0)
assert(#select(2, complete("  ", 2)) == 0)
assert(#select(2, complete("t[1].pr", 7)) == 0)
assert(#select(2, complete("f():un", 6)) == 0)
assert(#select(2, complete(":run pr", 7)) == 0)
assert(#select(2, complete("x = 'pri", 8)) == 0)
