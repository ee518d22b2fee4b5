--- The live status line of `run` on a terminal (drawn by the host: which tasks are running and
--- for how long, how far a large transfer has got). While it is on, what Lua writes to stdout or
--- stderr — `print`, `io.write`, `write` and `flush` on io.stdout or io.stderr, and so the output
--- of `os.execute`'s command — takes it out of the way first, so lines and the status never mix.
--- (Not what escapes Lua's own files: what a command started with `io.popen` writes to stderr,
--- a file opened on /dev/stderr.)
local core = require("sloth.core")

local M = {}

local begin, finish = core.console_begin, core.console_end

--- A to-be-closed value whose closing ends a write (errors included): one per outcome, made once.
local function closer(stream, ends_line)
  return setmetatable({}, { __close = function()
    finish(stream, ends_line)
  end })
end
local ENDED = {
  stdout = { [true] = closer("stdout", true), [false] = closer("stdout", false), none = closer("stdout", nil) },
  stderr = { [true] = closer("stderr", true), [false] = closer("stderr", false), none = closer("stderr", nil) },
}

--- How the last non-empty piece of what `write` is given ends (nil: nothing written).
local function ends_line(...)
  for i = select("#", ...), 1, -1 do
    local piece = select(i, ...)
    if type(piece) == "string" then
      if piece ~= "" then
        return piece:sub(-1) == "\n"
      end
    elseif type(piece) == "number" then
      return false
    end
  end
  return nil
end

local function ended(stream, ...)
  local ends = ends_line(...)
  return ENDED[stream][ends == nil and "none" or ends]
end

local wrapped = false

--- The writers, routed past the line (once per VM; when the line is off they only cost a call).
--- The originals keep their names here, so that their errors read as before ("bad argument #1
--- to 'write'").
local function wrap_writers()
  if wrapped then
    return
  end
  wrapped = true
  local stdout, stderr = io.stdout, io.stderr
  local function stream_of(file)
    return (rawequal(file, stdout) and "stdout") or (rawequal(file, stderr) and "stderr") or nil
  end
  do
    local print = print
    _G.print = function(...)
      begin()
      local _ <close> = ENDED.stdout[true]
      return print(...)
    end
  end
  do
    local write, output = io.write, io.output
    io.write = function(...)
      local stream = stream_of(output())
      if not stream then
        return write(...)
      end
      begin()
      local _ <close> = ended(stream, ...)
      return write(...)
    end
  end
  do
    local flush = io.flush
    io.flush = function(...)
      begin()
      local _ <close> = ENDED.stdout.none
      return flush(...)
    end
  end
  local methods = getmetatable(stdout).__index
  do
    local write = methods.write
    methods.write = function(file, ...)
      if file ~= stdout and file ~= stderr then
        return write(file, ...)
      end
      begin()
      local _ <close> = ended(stream_of(file), ...)
      return write(file, ...)
    end
  end
  do
    local flush = methods.flush
    methods.flush = function(file, ...)
      if file ~= stdout and file ~= stderr then
        return flush(file, ...)
      end
      begin()
      local _ <close> = ENDED[stream_of(file)].none
      return flush(file, ...)
    end
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

return M
