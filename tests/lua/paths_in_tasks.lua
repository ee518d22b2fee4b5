-- Relative paths in a task's Lua code resolve against its workdir; coroutines keep the task.
local h = require("_helpers")
local core = require("sloth.core")

local workdir = h.tmpdir()
local summary = h.run({ g = { tasks = {
  { name = "writes", command = function()
      local f = assert(io.open("relative.txt", "w"))
      f:write("in workdir")
      f:close()
      assert(os.rename("relative.txt", "renamed.txt"))
      local lines = {}
      for line in io.lines("renamed.txt") do lines[#lines + 1] = line end
      assert(lines[1] == "in workdir")
      local co = coroutine.wrap(function()
        local g = assert(io.open("from-coroutine.txt", "w"))
        g:write(core.context().task)
        g:close()
      end)
      co()
      local out = exec.run("cat renamed.txt")
      return out == "in workdir", "read back through exec"
    end },
} } }, { workdir = workdir })
assert(summary.ok, summary.by_group.g.writes.message)
assert(h.read(workdir .. "/renamed.txt") == "in workdir")
assert(h.read(workdir .. "/from-coroutine.txt") == "writes")
assert(core.context() == nil, "no task context outside a task")
