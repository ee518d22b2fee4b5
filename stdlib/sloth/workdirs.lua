--- A group's working directory over a run: `create_workdir_before_run` makes a fresh
--- temporary one, a named `workdir` that does not exist yet is created (with or without that
--- field, as the Go tool did), and afterwards `clean_workdir_after_run(result)` decides whether
--- it goes. A workdir the user named is never removed unless that function says so — even when
--- this run created it: the name says the user wants it there, and what the tasks left in it is
--- theirs. A temporary one is removed unless the function says otherwise; the directory
--- sloth-runner was started in is never removed.
local core = require("sloth.core")
local errors = require("sloth.errors")
local fs = require("fs")
local log = require("log")
local workspace = require("workspace")
local preempt = require("sloth.preempt")

local M = {}

--- An apply of a remote task's changes that died halfway (its master killed) left `dir` half
--- of each: it is taken back before any task of the run works there, local ones too — not
--- only by the next remote task's snapshot — and a warning says what was. (A directory that
--- cannot be looked at now is left to what the tasks find.)
local function take_back_dead_applies(dir)
  local looked, notes = pcall(workspace.recover, dir)
  if looked then
    for _, note in ipairs(notes) do
      log.warn(string.format("%s: %s", dir, note))
    end
  end
end

--- The directory the group runs in, and what `finish` needs to know; nil and a message when
--- it cannot be made.
---@return string? workdir, table|string state_or_err
function M.prepare(group, default)
  if group.workdir then
    local err = fs.mkdir(group.workdir)
    if err then
      return nil, string.format("group '%s': cannot create workdir %s: %s", group.name, group.workdir, err)
    end
    take_back_dead_applies(group.workdir)
    return group.workdir, { dir = group.workdir, temporary = false }
  end
  if not group.create_workdir then
    take_back_dead_applies(default)
    return default, { dir = default, temporary = false }
  end
  local dir, err = fs.tmpdir()
  if not dir then
    return nil, string.format("group '%s': cannot create a temporary workdir: %s", group.name, err)
  end
  return dir, { dir = dir, temporary = true }
end

--- Applies the clean-up decision once the group's tasks are done. The decision function gets
--- `{ success, error?, outputs = { task = outputs }, output = last task's outputs }`.
function M.finish(group, state, results, reporter)
  local result = { success = true, outputs = {} }
  for name, r in pairs(results) do
    result.outputs[name] = r.outputs
    if r.status == "failed" or r.status == "aborted" then
      result.success = false
      result.error = result.error or string.format("%s: %s", name, tostring(r.message))
    end
  end
  -- `output`: what the Go tool passed, the outputs of the group's last task (in declaration
  -- order) that ran.
  for i = #group.tasks, 1, -1 do
    local r = results[group.tasks[i].name]
    if r and (r.status == "succeeded" or r.status == "failed") then
      result.output = r.outputs or {}
      break
    end
  end
  result.output = result.output or {}
  local remove = state.temporary
  if group.clean_workdir then
    local ok, decision = preempt.pcall(group.clean_workdir, result)
    if not ok then
      reporter.note(string.format("group '%s': clean_workdir_after_run failed, keeping %s: %s", group.name, state.dir,
        errors.clean(decision)))
      return
    end
    remove = decision == true
  end
  if not remove then
    return
  end
  if state.dir == core.cwd() then
    reporter.note(string.format("group '%s': not removing %s: it is where sloth-runner was started", group.name, state.dir))
    return
  end
  local err = fs.rm_r(state.dir)
  if err then
    reporter.note(string.format("group '%s': could not remove %s: %s", group.name, state.dir, err))
  end
end

return M
