-- Native functions fail with error values: a `kind` to decide on, fields naming what failed,
-- and the text such errors always printed.
local h = require("_helpers")
local errors = require("sloth.errors")

-- A directory that is not there: an I/O error naming it, raised by workspace.snapshot.
local missing = h.tmpdir() .. "/not-there"
local ok, err = pcall(workspace.snapshot, missing)
assert(not ok and errors.is_native(err), tostring(err))
assert(err.kind == "io" and errors.kind(err) == "io", tostring(err.kind))
assert(err.call == "workspace.snapshot" and err.path and err.path:find(missing, 1, true), tostring(err.path))
assert(tostring(err) == "workspace.snapshot: " .. err.message)
h.contains(err.message, missing)
assert(errors.clean(err) == err.message, "clean gives the message without the function's name")

-- exec.run returns its error values, kinds told apart.
local _, _, exited = exec.run("exit 3")
assert(exited.kind == "exit" and exited.code == 3 and not exited.timed_out, tostring(exited))
assert(tostring(exited) == "exited with code 3" and exited.call == nil)
local _, _, timed_out = exec.run("sleep 5", { timeout = "50ms" })
assert(timed_out.kind == "timeout" and timed_out.timed_out == true, tostring(timed_out))
assert(tostring(timed_out) == "timed out after 50ms", tostring(timed_out))
local _, _, unstarted = exec.run({ "/nonexistent/program" })
assert(unstarted.kind == "io" and unstarted.code == 127, tostring(unstarted))
local _, _, killed = exec.run("kill -TERM $$")
assert(killed.kind == "signal" and killed.signal == 15, tostring(killed))

-- Any other error has no kind: Lua's own, and a native function's complaint about how it was
-- called (which stays a plain error, cleaned of the host's decorations).
assert(errors.kind("text") == nil and errors.kind(nil) == nil and errors.kind({ kind = "io" }) == nil)
local ok, usage = pcall(workspace.snapshot, h.tmpdir(), { exclud = {} })
assert(not ok and errors.kind(usage) == nil and not errors.is_native(usage))
h.contains(errors.clean(usage), "unknown option 'exclud'")
