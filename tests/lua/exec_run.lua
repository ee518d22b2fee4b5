-- exec.run: shell and argv forms, env, cwd, stdin, errors, timeouts that kill the whole tree,
-- and async: it never blocks other running jobs.
local exec = require("exec")
local core = require("sloth.core")
local h = require("_helpers")

assert(exec == _G.exec)

local out, err_out, err = exec.run("echo out; echo err >&2")
assert(out == "out\n" and err_out == "err\n" and err == nil)

-- argv: no shell, so the argument is taken literally.
out, _, err = exec.run({ "printf", "%s|", "a b", "$HOME" })
assert(err == nil and out == "a b|$HOME|", out)

-- env is added to the inherited environment.
out = exec.run("printf '%s %s' \"$SLOTH_SPEC_VAR\" \"${PATH:+has-path}\"", { env = { SLOTH_SPEC_VAR = "set" } })
assert(out == "set has-path", out)

-- cwd, relative to the current directory outside a task.
local dir = h.tmpdir()
out = exec.run("pwd", { cwd = dir })
assert(out:gsub("%s+$", "") == dir)
local ok, message = pcall(exec.run, "true", { cwd = dir .. "/missing" })
assert(not ok and tostring(message):find("invalid value for option 'cwd'", 1, true), tostring(message))

-- stdin
out = exec.run({ "tr", "a-z", "A-Z" }, { stdin = "shout" })
assert(out == "SHOUT")

-- A failure: a table that prints as its message.
_, _, err = exec.run("exit 7")
assert(err.code == 7 and err.signal == nil and err.timed_out == false)
assert(tostring(err) == "exited with code 7")
_, _, err = exec.run("kill -TERM $$")
assert(err.code == nil and err.signal == 15 and tostring(err):find("SIGTERM"), tostring(err))
_, _, err = exec.run({ "definitely-not-a-program-sloth" })
assert(err.code == 127 and tostring(err):find("definitely-not-a-program-sloth", 1, true), tostring(err))

-- Bad options are named.
ok, message = pcall(exec.run, "true", { timeout = "soon" })
assert(not ok and tostring(message):find("option 'timeout'", 1, true), tostring(message))
ok, message = pcall(exec.run, "true", { colour = "red" })
assert(not ok and tostring(message):find("unknown option 'colour'", 1, true), tostring(message))

-- A timeout kills the child and the grandchild it spawned.
local pidfile = dir .. "/grandchild.pid"
local started = core.now()
_, _, err = exec.run("sh -c 'echo $$ > " .. pidfile .. "; exec sleep 30' & wait", { timeout = "200ms" })
local elapsed = core.now() - started
assert(err and err.timed_out == true, "timed out")
assert(tostring(err) == "timed out after 200ms", tostring(err))
assert(elapsed < 10, "the timeout took " .. elapsed .. "s")
local pid = h.read(pidfile):gsub("%s+$", "")
assert(h.wait_until_dead(pid), "the grandchild " .. pid .. " survived the timeout")

-- Numeric timeouts are seconds.
_, _, err = exec.run("sleep 5", { timeout = 0.1 })
assert(err and err.timed_out)

-- Async: two 0.3s sleeps in two jobs overlap (loosely checked: this is behaviour, not speed).
started = core.now()
local a = core.spawn(function() return exec.run("sleep 0.3") end)
local b = core.spawn(function() return exec.run("sleep 0.3") end)
assert(core.wait(a) and core.wait(b))
elapsed = core.now() - started
assert(elapsed < 0.58, "two concurrent sleeps took " .. elapsed .. "s: exec.run blocked")

-- A file Lua holds open is not inherited by the commands started meanwhile: a script written
-- while another task starts a command is not "busy" when run, and a command does not keep a
-- pipeline's files open. (`io.output` with a path too.)
do
  local held_dir = h.tmpdir()
  local held = io.open(held_dir .. "/held.txt", "w")
  held:write("x")
  local previous = io.output()
  io.output(held_dir .. "/out.txt")
  local fds = exec.run("ls -l /proc/$$/fd")
  io.output():close()
  io.output(previous)
  held:close()
  assert(not fds:find("held.txt", 1, true) and not fds:find("out.txt", 1, true), fds)
  -- A script written and run at once, while a command started meanwhile still runs.
  local script = held_dir .. "/run.sh"
  local file = io.open(script, "w")
  local sleeper = core.spawn(function()
    return exec.run("sleep 1")
  end)
  file:write("#!/bin/sh\necho ran\n")
  file:close()
  assert(exec.command("chmod", "+x", script))
  local ran, _, run_err = exec.run(script)
  assert(run_err == nil and ran == "ran\n", tostring(run_err))
  core.wait(sleeper)
end
