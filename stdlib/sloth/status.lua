--- The live status line of `run` on a terminal (drawn by the host: which tasks are running and
--- for how long, how far a large transfer has got). While it is on, what Lua writes to stdout or
--- stderr — `print`, `io.write`, `write` on io.stdout or io.stderr, and the output of
--- `os.execute`'s command — takes it out of the way first, so lines and the status never mix.
local core = require("sloth.core")

local M = {}

--- Whether the last non-empty piece of what `write` is given ends a line (nil: nothing).
local function ends_line(...)
  for i = select("#", ...), 1, -1 do
    local piece = select(i, ...)
    if type(piece) == "string" and piece ~= "" then
      return piece:sub(-1) == "\n"
    elseif type(piece) == "number" then
      return false
    end
  end
  return nil
end

local wrapped = false

--- The writers, routed past the line (once per VM: they pass straight through when it is off).
local function wrap_writers()
  if wrapped then
    return
  end
  wrapped = true
  local stdout, stderr = io.stdout, io.stderr
  local print_plain, write_plain, execute_plain = print, io.write, os.execute
  local stream_of = function(file)
    return (rawequal(file, stdout) and "stdout") or (rawequal(file, stderr) and "stderr") or nil
  end
  print = function(...)
    return core.console("stdout", true, print_plain, ...)
  end
  io.write = function(...)
    local stream = stream_of(io.output())
    if not stream then
      return write_plain(...)
    end
    return core.console(stream, ends_line(...), write_plain, ...)
  end
  local methods = getmetatable(stdout).__index
  local file_write = methods.write
  methods.write = function(file, ...)
    local stream = stream_of(file)
    if not stream then
      return file_write(file, ...)
    end
    return core.console(stream, ends_line(...), file_write, file, ...)
  end
  os.execute = function(...)
    return core.console("stderr", nil, execute_plain, ...)
  end
end

--- Turns the line on when stderr is a terminal that wants one (not with NO_COLOR, nor TERM=dumb);
--- whether it is on.
function M.start()
  if not core.status_on() then
    return false
  end
  wrap_writers()
  return true
end

--- Takes the line away (the run is over).
function M.stop()
  core.status_off()
end

--- A task started or ended.
---@param ref string `group/task`
---@param running boolean
function M.task(ref, running)
  core.status_task(ref, running)
end

return M
