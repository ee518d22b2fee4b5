-- "Did you mean …?": the closest known name for a typo, and nothing for a name unlike any.
local suggest = require("sloth.suggest")

local fields = { "depends_on", "command", "retries", "timeout", "workdir", "next_if_fail" }
assert(suggest.closest("depend_on", fields) == "depends_on")
assert(suggest.closest("dependson", fields) == "depends_on")
assert(suggest.closest("comand", fields) == "command")
assert(suggest.closest("retires", fields) == "retries", "a swap of neighbours is one edit")
assert(suggest.closest("Timeout", fields) == "timeout", "case does not count")
assert(suggest.closest("banana", fields) == nil, "nothing close: no guess")
assert(suggest.closest("x", fields) == nil)
assert(suggest.closest("b", { "a" }) == nil, "one letter for another is no typo")
assert(suggest.closest("A", { "a" }) == "a")
assert(suggest.closest("command", fields) == nil, "the name itself is not a suggestion")
assert(suggest.closest(42, fields) == nil)
assert(suggest.closest("tsl", { ca = true, cert = true, key = true, tls = true }) == "tls", "keys of a set")
assert(suggest.closest("anything", {}) == nil)
assert(suggest.hint("comand", fields) == " (did you mean 'command'?)")
assert(suggest.hint("banana", fields) == "")

-- Through the reading of TaskDefinitions: fields, dependencies, agents, workspace and tls.
local taskdefs = require("sloth.taskdefs")
local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p " .. dir))
local file = dir .. "/typos.lua"
local f = assert(io.open(file, "w"))
f:write([[
TaskDefinitions = { g = { agents = { builder = { address = "127.0.0.1:1", tsl = {} } }, tasks = {
  { name = "compile", command = "true" },
  { name = "test", depend_on = "compile", command = "true" },
  { name = "pack", depends_on = { "compil" }, agent = "bulder", command = "true", workspace = { sync_bak = "always" } },
} } }
]])
f:close()
local ok, err = pcall(taskdefs.load, file)
os.execute("rm -rf " .. dir)
assert(not ok)
local message = tostring(err)
for _, expected in ipairs({
  "field 'depend_on': unknown field (did you mean 'depends_on'?)",
  "unknown task 'compil' (did you mean 'compile'?)",
  "unknown agent 'bulder' (agents: builder) (did you mean 'builder'?)",
  "field 'workspace.sync_bak': unknown field (did you mean 'sync_back'?)",
  "field 'agents.builder.tsl': unknown field (did you mean 'tls'?)",
}) do
  assert(message:find(expected, 1, true), "missing: " .. expected .. "\n" .. message)
end
