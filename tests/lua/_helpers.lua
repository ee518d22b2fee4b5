-- Shared helpers for the Lua specs (not a spec itself: the leading underscore).
local exec = require("exec")
local taskdefs = require("sloth.taskdefs")
local plan = require("sloth.plan")
local runner = require("sloth.runner")

local M = {}

--- A fresh temporary directory.
function M.tmpdir()
  local out, _, err = exec.run({ "mktemp", "-d" })
  assert(err == nil, tostring(err))
  return (out:gsub("%s+$", ""))
end

function M.read(path)
  local f = io.open(path, "r")
  if not f then
    return nil
  end
  local text = f:read("a")
  f:close()
  return text
end

function M.write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

--- A reporter that records events instead of printing.
function M.recorder()
  local events = {}
  return events, {
    started = function(ref) events[#events + 1] = "start " .. ref end,
    finished = function(ref, result) events[#events + 1] = result.status .. " " .. ref end,
    skipped = function(ref) events[#events + 1] = "skipped " .. ref end,
    retrying = function(ref, attempt) events[#events + 1] = "retry " .. ref .. " " .. attempt end,
    note = function(message) events[#events + 1] = "note " .. message end,
    summary = function() end,
  }
end

--- Validates `defs` and runs it; returns the run summary and the recorded events.
function M.run(defs, opts)
  opts = opts or {}
  local pipeline = taskdefs.from_value(defs, opts.file or "spec.lua")
  local steps = plan.build(pipeline, opts)
  local events, reporter = M.recorder()
  local workdir = opts.workdir or M.tmpdir()
  local summary = runner.run(steps, {
    jobs = opts.jobs,
    reporter = reporter,
    workdir_of = function(group) return group.workdir or workdir end,
    store = require("sloth.artifacts").new_store(workdir),
  })
  return summary, events, workdir
end

--- The validation messages `fn` raises, joined; fails if it raises nothing or something else.
function M.validation_error(fn)
  local ok, err = pcall(fn)
  assert(not ok, "expected a validation error")
  assert(require("sloth.errors").is_validation(err), "not a validation error: " .. tostring(err))
  return table.concat(err.messages, "\n")
end

--- Whether process `pid` is gone (or a zombie: killed, waiting to be reaped by init).
function M.is_dead(pid)
  local stat = M.read("/proc/" .. pid .. "/stat")
  if stat == nil then
    return true
  end
  return stat:match("^%d+ %b() (%a)") == "Z"
end

--- Polls `is_dead` for up to two seconds (reaping and signal delivery are asynchronous).
function M.wait_until_dead(pid)
  local core = require("sloth.core")
  local deadline = core.now() + 2
  while core.now() < deadline do
    if M.is_dead(pid) then
      return true
    end
    core.sleep(0.02)
  end
  return M.is_dead(pid)
end

function M.contains(haystack, needle)
  assert(haystack:find(needle, 1, true), string.format("%q does not contain %q", haystack, needle))
end

--- Fake command-line tools: `names` in a new directory (put it first on a task's PATH), each
--- the same shell script, which records its name, working directory and arguments in the
--- returned log (see `calls`), then runs `body` (`$name` is the name it was called by).
function M.fakebin(names, body)
  local dir = M.tmpdir()
  local log = dir .. "/calls.log"
  local script = "#!/bin/sh\nname=$(basename \"$0\")\n{ printf '%s\\000%s' \"$name\" \"$(pwd)\"; "
    .. "for arg in \"$@\"; do printf '\\000%s' \"$arg\"; done; printf '\\n'; } >> '" .. log .. "'\n" .. body
  for _, name in ipairs(names) do
    M.write(dir .. "/" .. name, script)
    local _, _, err = exec.run({ "chmod", "+x", dir .. "/" .. name })
    assert(err == nil, tostring(err))
  end
  return dir, log
end

--- The calls a `fakebin` log recorded since the last look, each `{ name, cwd, argv }` (`argv`
--- without the name); the log is emptied.
function M.calls(log)
  local text = M.read(log) or ""
  M.write(log, "")
  local calls = {}
  for line in text:gmatch("([^\n]*)\n") do
    local fields = {}
    for field in (line .. "\0"):gmatch("([^\0]*)\0") do
      fields[#fields + 1] = field
    end
    calls[#calls + 1] = { name = fields[1], cwd = fields[2], argv = { table.unpack(fields, 3) } }
  end
  return calls
end

--- Asserts `calls` are `want`: each `{ name, cwd, argv... }`, compared whole.
function M.same_calls(calls, want)
  local function show(list)
    local lines = {}
    for i, call in ipairs(list) do
      local words = { call.name or call[1], "@", call.cwd or call[2] }
      for _, arg in ipairs(call.argv or { table.unpack(call, 3) }) do
        words[#words + 1] = string.format("%q", arg)
      end
      lines[i] = table.concat(words, " ")
    end
    return table.concat(lines, "\n")
  end
  local got, wanted = show(calls), show(want)
  assert(got == wanted, "calls:\n" .. got .. "\nwanted:\n" .. wanted)
end

return M
