-- Fake command-line tools for the specs of the modules over a vendor's CLI (not a spec
-- itself: the leading underscore). Each tool is a shell script that logs how it was called —
-- its name, its working directory and each argument on a line of its own — and then runs the
-- body it was given (printing what the real tool prints).
local h = require("_helpers")
local exec = require("exec")

local M = {}

--- A directory of fake tools, `tools` mapping a name to its shell body. Returns the fakes:
--- `bin` (the directory, to put first on PATH), `env` (a task env with it there), `calls()`
--- (every call logged since the last `calls()`, as `{ tool, cwd, argv }`).
function M.new(tools)
  local bin = h.tmpdir()
  local log = h.tmpdir() .. "/calls.log"
  h.write(log, "")
  for name, body in pairs(tools) do
    local path = bin .. "/" .. name
    h.write(path, table.concat({
      "#!/bin/sh",
      "{ printf 'tool %s\\n' '" .. name .. "'; printf 'cwd %s\\n' \"$(pwd -P)\"",
      "  for arg in \"$@\"; do printf 'arg %s\\n' \"$arg\"; done; } >> '" .. log .. "'",
      body,
      "",
    }, "\n"))
    local _, chmod_err, err = exec.command("chmod", "+x", path)
    assert(err == nil, chmod_err)
  end
  local fakes = { bin = bin, env = { PATH = bin .. ":" .. os.getenv("PATH") } }
  function fakes.calls()
    local calls = {}
    for line in h.read(log):gmatch("[^\n]*\n") do
      local key, value = line:match("^(%a+) (.*)\n$")
      if key == "tool" then
        calls[#calls + 1] = { tool = value, argv = {} }
      elseif key == "cwd" then
        calls[#calls].cwd = value
      else
        local argv = calls[#calls].argv
        argv[#argv + 1] = value
      end
    end
    h.write(log, "")
    return calls
  end
  return fakes
end

--- Asserts `calls` are exactly `want` (`{ cwd, tool, arg... }` each).
function M.expect(calls, want)
  local function show(list)
    local lines = {}
    for i, call in ipairs(list) do
      local args = {}
      for j, arg in ipairs(call.argv) do
        args[j] = string.format("%q", arg)
      end
      lines[i] = string.format("[%s] %s %s", call.cwd, call.tool, table.concat(args, " "))
    end
    return table.concat(lines, "\n")
  end
  local wanted = {}
  for i, call in ipairs(want) do
    wanted[i] = { cwd = call[1], tool = call[2], argv = table.move(call, 3, #call, 1, {}) }
  end
  assert(show(calls) == show(wanted), "calls:\n" .. show(calls) .. "\nwanted:\n" .. show(wanted))
end

--- Runs `fn` as the command of a task in `workdir` with `env`; fails unless it succeeds.
function M.task(workdir, env, fn)
  local summary = h.run({ g = { workdir = workdir, tasks = { { name = "t", env = env, command = fn } } } })
  local result = summary.by_group.g.t
  assert(result.status == "succeeded", tostring(result.message))
  return result.outputs
end

--- An empty directory: PATH without any tool.
function M.no_tools()
  return { PATH = h.tmpdir() }
end

return M
