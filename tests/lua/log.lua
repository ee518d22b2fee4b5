-- The log module: global and require, every level, fields, any message value.
assert(log == require("log"), "log is the same table as a global and through require")
for _, level in ipairs({ "debug", "info", "warn", "error" }) do
  assert(type(log[level]) == "function", "log." .. level)
  log[level]("a message", { key = "value", n = 1 })
  log[level](42)
  log[level](nil)
  log[level]({})
end
local ok, err = pcall(log.info, "x", "not a table")
assert(not ok and tostring(err):find("table"), "fields must be a table")

-- log.success (the Go tool's): an info line marked as a success; fields as for the others.
assert(type(log.success) == "function")
log.success("deployed", { env = "prod" })
log.success("deployed")
ok, err = pcall(log.success, "x", "not a table")
assert(not ok and tostring(err):find("table"), "fields must be a table")
