--- Lua's `os.execute` and `io.popen`, run as `exec.run` runs a command (see
--- src/runtime/os_commands.rs): in the calling task's workdir, with its `env`, in a process
--- group killed with the task (a timeout, Ctrl-C, a cancelled remote task), the other tasks
--- going on meanwhile. What they return is what Lua's do: `os.execute` -> true | nil, "exit" |
--- "signal", code; `io.popen(cmd)` -> a file to read what it wrote (the command has run to its
--- end first), whose `close` returns what `os.execute` would; `io.popen(cmd, "w")` -> a file to
--- write its input, run when closed. What a command writes that is not read is written out,
--- each stream whole, when it returns (to stdout and stderr, as the command would have; stdout's
--- to stderr when stdout carries JSON): the other tasks write meanwhile, and a line of theirs
--- never lands inside one of its — as on an agent.
---
--- Where the caller cannot wait (a coroutine the pipeline made and resumes itself, a `require`d
--- module's body, a `string.gsub` or `table.sort` callback), the command runs the same way but
--- the task's thread waits for it (other tasks wait too): still stopped by the task's timeout
--- and by Ctrl-C.
local core = require("sloth.core")

local M = {}

local lua_execute, lua_popen, lua_open, lua_remove = os.execute, io.popen, io.open, os.remove
local scratch_file, execute_blocking = core.scratch_file, core.execute_blocking

--- Coroutines the pipeline's code made (`coroutine.create`, `coroutine.wrap`): it resumes them
--- itself, so a wait inside one would end at its `resume`, not in the engine.
M.user_coroutines = setmetatable({}, { __mode = "k" })

--- `core.execute`, or where the running code cannot wait while the other tasks go on, the
--- blocking one, stopped at the running coroutine's deadline (a coroutine the pipeline made
--- has the deadline of the task that resumed it: see the prelude).
local function execute(command, input, out, err)
  -- A task past its deadline (or cancelled) starts nothing more.
  core.raise_if_stopped()
  local co, main = coroutine.running()
  if not main and coroutine.isyieldable() and not M.user_coroutines[co] then
    return core.execute(command, input, out, err)
  end
  return execute_blocking(command, input, out, err)
end

--- A command's output is written out this much at a time: never held whole (a gigabyte of
--- output is a gigabyte of Lua memory, past `--lua-memory-limit`).
local PIECE = 1 << 20

--- Calls `each` with what the file at `path` holds from byte `from` on, a piece at a time;
--- returns how many bytes that was (none: no such file).
function M.each_piece(path, from, each)
  local file = lua_open(path, "rb")
  if not file then
    return 0
  end
  file:seek("set", from)
  local read = 0
  while true do
    local piece = file:read(PIECE)
    if not piece then
      break
    end
    read = read + #piece
    each(piece)
  end
  file:close()
  return read
end

--- Writes the file at `path` to `out` a piece at a time, and removes it.
local function copied(path, out)
  M.each_piece(path, 0, function(piece)
    out:write(piece)
  end)
  lua_remove(path)
end

--- Writes out what a command wrote to the streams that were not read (files at `written` and
--- `errors`, removed): to stdout, as the command would have (whatever `io.output` is now) —
--- stderr when stdout carries JSON only.
local function pass_on(written, errors)
  if written then
    local out = core.stdout_kept() and io.stderr or io.stdout
    copied(written, out)
    out:flush()
  end
  if errors then
    copied(errors, io.stderr)
  end
end

function M.execute(command)
  if type(command) ~= "string" then
    -- No command (is there a shell?), or not a string: Lua's own answer, or its own error.
    return lua_execute(command)
  end
  local out, err = scratch_file(), scratch_file()
  local results = table.pack(execute(command, nil, out, err))
  pass_on(out, err)
  return table.unpack(results, 1, results.n)
end

--- The files `io.popen` gave, open (true) or closed (false): what `io.type` says of them.
local command_files = setmetatable({}, { __mode = "k" })

local lua_io_type = io.type
function M.io_type(value)
  local open = command_files[value]
  if open ~= nil then
    return open and "file" or "closed file"
  end
  return lua_io_type(value)
end

--- A file-like value over `file` whose `close` says how the command ended (what `finish()`
--- returns); closed twice, it is an error, as a file's second close is.
local function command_file(file, finish)
  local wrapper = {}
  local function close()
    if not command_files[wrapper] then
      error("attempt to use a closed file", 2)
    end
    command_files[wrapper] = false
    return finish()
  end
  setmetatable(wrapper, {
    __name = "FILE*",
    __index = function(_, name)
      if name == "close" then
        return close
      end
      local method = file[name]
      if type(method) ~= "function" then
        return nil
      end
      return function(self, ...)
        local results = table.pack(method(self == wrapper and file or self, ...))
        -- (`f:write(...)` returns the file it wrote to: this one.)
        if results[1] == file then
          results[1] = wrapper
        end
        return table.unpack(results, 1, results.n)
      end
    end,
    __tostring = function()
      return tostring(file)
    end,
    __close = function()
      if command_files[wrapper] then
        close()
      end
    end,
  })
  command_files[wrapper] = true
  return wrapper
end

function M.popen(command, mode)
  if type(command) ~= "string" or (mode ~= nil and mode ~= "r" and mode ~= "w") then
    return lua_popen(command, mode)
  end
  if mode == "w" then
    local input = {}
    local sink = {
      write = function(self, ...)
        for i = 1, select("#", ...) do
          local piece = select(i, ...)
          if type(piece) ~= "string" and type(piece) ~= "number" then
            error(string.format("bad argument #%d to 'write' (string expected, got %s)", i, type(piece)), 2)
          end
          -- (A number as a file's `write` writes it: 3.0 as 3.)
          input[#input + 1] = math.type(piece) == "float" and string.format("%.14g", piece) or tostring(piece)
        end
        return self
      end,
      flush = function(self)
        return self
      end,
      setvbuf = function()
        return true
      end,
      close = function() end,
    }
    return command_file(sink, function()
      local out, err = scratch_file(), scratch_file()
      local results = table.pack(execute(command, table.concat(input), out, err))
      pass_on(out, err)
      return table.unpack(results, 1, results.n)
    end)
  end
  local path, errors = scratch_file(), scratch_file()
  local ok, how, code = execute(command, nil, path, errors)
  pass_on(nil, errors)
  local file, err = lua_open(path, "rb")
  lua_remove(path)
  if not file then
    return nil, err
  end
  return command_file(file, function()
    file:close()
    return ok, how, code
  end)
end

return M
