-- exec.command(cmd, ...args): the program and its arguments as given (no shell), in the
-- task's workdir, with its env, under its timeout; a missing program is an error naming it.
local exec = require("exec")
local h = require("_helpers")

-- No shell: arguments are taken literally, numbers become text.
local out, err_out, err = exec.command("printf", "%s|", "a b", "$HOME", "*", 42)
assert(err == nil and err_out == "" and out == "a b|$HOME|*|42|", out)

-- stderr and the exit status come back like exec.run's.
out, err_out, err = exec.command("sh", "-c", "echo out; echo oops >&2; exit 4")
assert(out == "out\n" and err_out == "oops\n", err_out)
assert(err.kind == "exit" and err.code == 4 and tostring(err) == "exited with code 4", tostring(err))

-- A program that does not exist: an err naming it, flagged not_found.
out, err_out, err = exec.command("definitely-not-a-program-sloth", "x")
assert(out == "" and err_out == "")
assert(err.kind == "io" and err.code == 127 and err.not_found == true, tostring(err))
assert(tostring(err):find("definitely-not-a-program-sloth", 1, true), tostring(err))
-- One that exists but cannot run is not "not found".
local dir = h.tmpdir()
h.write(dir .. "/not-executable", "#!/bin/sh\n")
_, _, err = exec.command(dir .. "/not-executable")
assert(err.kind == "io" and err.not_found == false, tostring(err))

-- Called wrongly: a Lua error naming the argument.
local ok, message = pcall(exec.command, { "ls" })
assert(not ok and tostring(message):find("exec.command: expected a program name (string) for 'cmd', got table", 1, true),
  tostring(message))
ok, message = pcall(exec.command, "echo", "a", {})
assert(not ok and tostring(message):find("argument #3 must be a string or a number, got table", 1, true), tostring(message))

-- Inside a task: its workdir and env, and its timeout kills what exec.command started.
local workdir = h.tmpdir()
local summary = h.run({ g = { workdir = workdir, tasks = {
  { name = "where", env = { SLOTH_SPEC_GREETING = "hi there" }, command = function()
      local pwd, _, pwd_err = exec.command("pwd")
      assert(pwd_err == nil, tostring(pwd_err))
      local greeting = exec.command("sh", "-c", "printf %s \"$SLOTH_SPEC_GREETING\"")
      return true, "ok", { pwd = pwd:gsub("%s+$", ""), greeting = greeting }
    end },
  { name = "slow", timeout = "200ms", command = function()
      exec.command("sh", "-c", "echo $$ > slow.pid; exec sleep 30")
      return true
    end },
} } })
local where = summary.by_group.g.where
assert(where.status == "succeeded", where.message)
assert(where.outputs.pwd == workdir and where.outputs.greeting == "hi there", where.outputs.pwd)
local slow = summary.by_group.g.slow
assert(slow.status == "failed" and slow.message:find("timed out", 1, true), slow.message)
local pid = h.read(workdir .. "/slow.pid"):gsub("%s+$", "")
assert(h.wait_until_dead(pid), "the program exec.command started survived the task's timeout: " .. pid)
