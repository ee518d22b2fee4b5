-- A misspelt option is an error naming it (with the closest known name), never an option
-- silently left out: `agent.connect(address, { tokn = ... })` must not connect without a token.
local function fails_with(expected, fn, ...)
  local ok, err = pcall(fn, ...)
  assert(not ok, "expected an error mentioning " .. expected)
  err = tostring(err)
  assert(err:find(expected, 1, true), err)
  return err
end

local dir = assert(fs.tmpdir())
fails_with("workspace.snapshot: unknown option 'exlude' (did you mean 'exclude'?)", workspace.snapshot, dir, { exlude = { "*.o" } })
fails_with("workspace.pack: unknown option 'exclud'", workspace.pack, dir, { exclud = {} })
fails_with("workspace.rules: unknown option 'ignore'", workspace.rules, dir, { ignore = {} })
local base = workspace.snapshot(dir)
fails_with("workspace.changes: unknown option 'spil' (did you mean 'spill'?)", workspace.changes, dir, base, { spil = dir })
local changes = workspace.changes(dir, base)
fails_with("workspace.apply: unknown option 'setuidd' (did you mean 'setuid'?)", workspace.apply, dir, changes, { setuidd = true })
-- Options spelt right still work.
assert(workspace.snapshot(dir, { exclude = { "*.o" } }))

fails_with("agent.connect: unknown option 'tokn' (did you mean 'token'?)", agent.connect, "127.0.0.1:1", { tokn = "secret" })
fails_with("agent.connect: unknown tls field 'cacert'", agent.connect, "127.0.0.1:1", { tls = { cacert = "ca.pem" } })
fails_with("agent.spawn: unknown option 'prot' (did you mean 'port'?)", agent.spawn, { name = "x", prot = 1 })

-- A negative timeout says so.
fails_with("expected a non-negative number", exec.run, "true", { timeout = -1 })
fails_with("exec.run: unknown option 'timout'", exec.run, "true", { timout = 1 })
fails_with("fs.glob: unknown option 'rot' (did you mean 'root'?)", fs.glob, "*", { rot = dir })
fails_with("fs.glob: expected table for 'opts', got string", fs.glob, "*", dir)
assert(fs.rm_r(dir) == nil)
