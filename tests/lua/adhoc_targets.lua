-- `exec`'s targets: the agents a pipeline declares (once each), selected by name, "*",
-- label=value or address.
local adhoc = require("sloth.adhoc")

local pipeline = {
  group_names = { "a", "b" },
  groups = {
    a = { agents = {
      web = { name = "web", address = "10.0.0.1:50051", labels = { role = "web", tier = "1" }, token = "t" },
      db = { name = "db", address = "10.0.0.2:50051", labels = { role = "db" } },
      twin = { name = "twin", address = "10.0.0.3:50051", labels = {} },
    } },
    b = { agents = {
      web = { name = "web", address = "10.0.0.1:50051", labels = { role = "web", tier = "1" }, token = "t" },
      twin = { name = "twin", address = "10.0.0.4:50051", labels = {} },
    } },
  },
}

local declared = adhoc.declared(pipeline)
local names = {}
for i, agent in ipairs(declared) do
  names[i] = agent.name
end
assert(table.concat(names, " ") == "a/twin b/twin db web",
  "one agent declared twice alike is one; a name for two agents is qualified: " .. table.concat(names, " "))
assert(declared[4].token == "t", "an agent keeps its token")

local function selected(target)
  local agents, problem = adhoc.select(declared, target, "tasks.lua")
  if not agents then
    return nil, problem
  end
  local list = {}
  for i, agent in ipairs(agents) do
    list[i] = agent.name
  end
  return table.concat(list, " ")
end

assert(selected("*") == "a/twin b/twin db web")
assert(selected("db") == "db")
assert(selected("web,db,web") == "web db", "a list, each agent once")
assert(selected("role=web") == "web")
assert(selected("role=web,tier=1") == "web", "every label must match")
assert(selected("role = db") == "db")
assert(selected("10.0.0.2:50051") == "db", "a declared address is that agent, with its token and TLS")
assert(selected("127.0.0.1:7000") == "127.0.0.1:7000", "another address is used as it is")
assert(selected("[::1]:7000") == "[::1]:7000")

local none, problem = selected("wbe")
assert(none == nil and problem:find("unknown target 'wbe'", 1, true) and problem:find("did you mean 'web'?", 1, true)
  and problem:find("agents: a/twin, b/twin, db, web", 1, true), problem)
none, problem = selected("role=cache")
assert(none == nil and problem:find("no agent has the labels role=cache", 1, true), problem)
none, problem = selected("role")
assert(none == nil and problem:find("unknown target 'role'", 1, true), problem)
none, problem = adhoc.select({}, "*", "empty.lua")
assert(none == nil and problem:find("empty.lua declares no agents", 1, true), problem)

assert(adhoc.is_address("host.example:50051") and adhoc.is_address("https://host:443"))
assert(not adhoc.is_address("web") and not adhoc.is_address("role=web") and not adhoc.is_address("*"))
