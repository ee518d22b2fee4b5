-- On an agent, how the master reaches its agents is removed from the pipeline before a task
-- runs: tokens and TLS settings, in TaskDefinitions as written and in the pipeline as read.
local secrets = require("sloth.secrets")
local taskdefs = require("sloth.taskdefs")

local defs = {
  g = {
    agents = {
      a = { address = "127.0.0.1:1", token = "token-a", tls = { ca = "ca.pem", cert = "cert.pem", key = "key.pem" } },
      b = { address = "127.0.0.1:2", token = "token-b" },
    },
    delegate_to = { address = "127.0.0.1:3", token = "token-d" },
    tasks = {
      { name = "t", agent = { "a", "b" }, command = "true" },
      { name = "u", delegate_to = { address = "127.0.0.1:4", token = "token-u" }, command = "true" },
    },
  },
}
local pipeline = taskdefs.from_value(defs, "spec.lua")
secrets.scrub(defs, pipeline)
local function holds_secret(value, seen)
  seen = seen or {}
  if type(value) == "string" then
    return value:find("^token%-") ~= nil or value:find("%.pem$") ~= nil
  elseif type(value) == "table" and not seen[value] then
    seen[value] = true
    for k, v in pairs(value) do
      if holds_secret(k, seen) or holds_secret(v, seen) then
        return true
      end
    end
  end
  return false
end
assert(not holds_secret(defs), "TaskDefinitions still holds a token or a TLS path")
assert(not holds_secret(pipeline), "the pipeline still holds a token or a TLS path")
assert(pipeline.groups.g.agents.a.address == "127.0.0.1:1", "addresses stay")

-- Literal tokens are found, by file and line; one read from the environment is not.
local found = secrets.literal_tokens({
  ["p.lua"] = 'a = { token = "x" }\nb = { token = os.getenv("T") }\n-- token = "in a comment"\nc = {token=[[y]]}\nd = { token = values.tokens.d }\n',
})
local listed = {}
for i, item in ipairs(found) do
  listed[i] = item.where .. " " .. item.how
end
assert(table.concat(listed, ",") == "p.lua:1 written in the pipeline,p.lua:4 written in the pipeline,p.lua:5 taken from values",
  table.concat(listed, ","))
