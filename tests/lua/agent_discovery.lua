-- Agent pools: members named POOL/host:port with the pool's settings, resolved on first need
-- and again only when every known member failed; a failed lookup names the pool and the URL.
local agent = require("agent")
local discovery = require("sloth.agent_discovery")
local dispatch = require("sloth.dispatch")
local pool = require("sloth.agent_pool")

-- The native function: a malformed URL or option is refused without asking anyone.
local ok, err = pcall(agent.discover, "http://fleet.test:1")
assert(not ok and err.kind == "invalid" and err.url == "http://fleet.test:1", tostring(err))
assert(tostring(err):find("agent.discover: invalid discovery URL 'http://fleet.test:1'", 1, true), tostring(err))
ok, err = pcall(agent.discover, "dns://fleet.test:1", { nameservr = "127.0.0.1:53" })
assert(not ok and tostring(err):find("unknown option 'nameservr' (did you mean 'nameserver'?)", 1, true), tostring(err))

-- From here on DNS answers what `answer` says.
local real = agent.discover
local asked, answer = 0, nil
agent.discover = function(url, opts)
  asked = asked + 1
  assert(url == "dns+srv://_s._tcp.fleet.test" and opts.nameserver == "127.0.0.1:5353")
  if type(answer) == "string" then
    error(setmetatable({ kind = "unreachable", message = url .. ": " .. answer }, { __name = "sloth.Error",
      __tostring = function(e) return "agent.discover: " .. e.message end }), 0)
  end
  return answer
end

local fleet = { name = "fleet", discover = "dns+srv://_s._tcp.fleet.test", nameserver = "127.0.0.1:5353",
  labels = { tier = "x" }, token = "t0ken", tls = { ca = "/ca.pem" } }
local declared = { name = "box", address = "127.0.0.1:7000", labels = {} }
answer = {
  { host = "a1.fleet.test", port = 7001, address = "127.0.0.1:7001", server_name = "a1.fleet.test" },
  { host = "a2.fleet.test", port = 7002, address = "127.0.0.1:7002", server_name = "a2.fleet.test" },
}
local list = assert(discovery.expand({ fleet, declared }))
assert(#list == 3 and asked == 1)
assert(list[1].name == "fleet/a1.fleet.test:7001" and list[1].address == "127.0.0.1:7001")
assert(list[1].labels.tier == "x" and list[1].token == "t0ken" and list[1].pool == "fleet")
assert(list[1].tls.ca == "/ca.pem" and list[1].tls.domain == "a1.fleet.test" and fleet.tls.domain == nil)
assert(list[3] == declared)

-- Policies see the members as agents.
local task = { name = "t", group = "g", remote = { candidates = { fleet }, policy = assert(dispatch.resolve("round_robin")) } }
assert(dispatch.choose(task).name == "fleet/a1.fleet.test:7001")
assert(dispatch.choose(task).name == "fleet/a2.fleet.test:7002")
assert(asked == 1, "known members are not asked for again")

-- One failed: the other is still known. Both failed: asked again, the answer replaces them.
pool.unreachable(list[1])
assert(#assert(discovery.expand({ fleet })) == 2 and asked == 1)
pool.unreachable(list[2])
answer = { { host = "a3.fleet.test", port = 7003, address = "127.0.0.1:7003", server_name = "a3.fleet.test" } }
local again = assert(discovery.expand({ fleet }))
assert(asked == 2 and #again == 1 and again[1].name == "fleet/a3.fleet.test:7003")

-- A failed lookup keeps the members known before.
pool.unreachable(again[1])
answer = "no SRV records for _s._tcp.fleet.test"
assert(discovery.expand({ fleet })[1].name == "fleet/a3.fleet.test:7003" and asked == 3)

-- A pool never resolved that resolves to nothing: the problem names the pool and the URL, and
-- the other candidates go on without it.
local other = { name = "other", discover = "dns+srv://_s._tcp.fleet.test", nameserver = "127.0.0.1:5353", labels = {} }
local none, problem = discovery.expand({ other })
assert(none == nil and problem == "agent pool 'other' (dns+srv://_s._tcp.fleet.test): resolves to no agents: "
  .. "no SRV records for _s._tcp.fleet.test", tostring(problem))
local rest = assert(discovery.expand({ other, declared }))
assert(#rest == 1 and rest[1] == declared)

agent.discover = real
