--- Progress lines while a run goes, and the summary table at the end (on stderr: stdout is
--- kept for machine-readable output).
local core = require("sloth.core")

local M = {}

local function first_line(text)
  if text == nil or text == "" then
    return "-"
  end
  return (text:match("^[^\n]*"))
end

--- `12 KiB`, `3.4 MiB`: a byte count for people.
local function size(bytes)
  local units = { "B", "KiB", "MiB", "GiB", "TiB" }
  local value, unit = bytes, 1
  while value >= 1024 and unit < #units do
    value, unit = value / 1024, unit + 1
  end
  return unit == 1 and string.format("%d B", bytes) or string.format("%.1f %s", value, units[unit])
end

--- `  ↑ 3 files 12.0 KiB, ↓ 1 file 40 B`: what a remote task's workspace moved.
local function moved(sync)
  if not sync then
    return ""
  end
  local function files(n)
    return n == 1 and "1 file" or string.format("%d files", n)
  end
  return string.format("  ↑ %s %s, ↓ %s %s", files(sync.up), size(sync.up_bytes), files(sync.down), size(sync.down_bytes))
end

local function indent(text)
  return "    " .. text:gsub("\n", "\n    ")
end

--- `group`, `task` of a "group/task" reference.
local function parts(ref)
  local group, task = ref:match("^(.-)/(.*)$")
  return group or "", task or ref
end

--- Seconds to the microsecond (what a clock says beyond that is noise).
local function seconds(value)
  return value and math.floor(value * 1e6 + 0.5) / 1e6
end

--- A `task_*` event of the JSON stream (`run --output json`), when it is on.
local function event(kind, ref, fields)
  if core.events_on() then
    fields.group, fields.task = parts(ref)
    core.event(kind, fields)
  end
end

---@param opts { quiet?: boolean, out?: file*, status?: boolean } `status`: the live status line is on (it is told what runs)
function M.new(opts)
  local out = opts.out or io.stderr
  local reporter = {}

  function reporter.started(ref)
    if opts.status then
      core.status_task(ref, true)
    end
    event("task_started", ref, {})
    if not opts.quiet then
      out:write(string.format("%s  started\n", ref))
    end
  end

  function reporter.finished(ref, result)
    if opts.status then
      core.status_task(ref, false)
    end
    if result.status ~= "skipped" then
      local outputs = type(result.outputs) == "table" and result.outputs or {}
      event("task_finished", ref, { status = result.status, duration = seconds(result.duration), attempts = result.attempts or 1,
        where = result.where or "local", message = result.message,
        exit_code = math.type(outputs.exit_code) == "integer" and outputs.exit_code or nil,
        sync = result.sync and { up = result.sync.up, up_bytes = result.sync.up_bytes, down = result.sync.down,
          down_bytes = result.sync.down_bytes } or nil })
    end
    if result.status == "succeeded" then
      if not opts.quiet then
        local duration = core.format_duration(result.duration)
        local message = result.message and ("  " .. first_line(result.message)) or ""
        local attempts = (result.attempts or 1) > 1 and string.format(" after %d attempts", result.attempts) or ""
        out:write(string.format("%s  succeeded (%s)%s%s%s\n", ref, duration, attempts, moved(result.sync), message))
      end
    elseif result.status == "skipped" then
      reporter.skipped(ref, result.message)
    elseif result.status == "aborted" then
      out:write(string.format("%s  ABORTED THE RUN: %s\n", ref, result.message))
    else
      local message = result.message or "failed"
      local head, rest = message:match("^([^\n]*)\n(.*)$")
      out:write(string.format("%s  FAILED (%s)  %s\n", ref, core.format_duration(result.duration), head or message))
      if rest then
        out:write(indent(rest) .. "\n")
      end
    end
  end

  function reporter.retrying(ref, attempt, total, message, delay)
    event("task_retrying", ref, { attempt = attempt, attempts = total, message = message, delay = delay })
    out:write(string.format("%s  attempt %d/%d failed: %s; retrying in %s\n", ref, attempt, total,
      first_line(message), core.format_duration(delay)))
  end

  function reporter.note(message)
    out:write("warning: " .. message .. "\n")
  end

  function reporter.skipped(ref, reason)
    event("task_skipped", ref, { message = reason })
    if not opts.quiet then
      out:write(string.format("%s  skipped: %s\n", ref, reason))
    end
  end

  --- The table of every task that was considered, in the order they ended.
  function reporter.summary(results, elapsed, aborted_by)
    if #results == 0 then
      out:write("nothing to run\n")
      return
    end
    local counts = { succeeded = 0, failed = 0, skipped = 0, aborted = 0 }
    local durations = {}
    local w1, w2, w3, w4 = #"TASK", #"STATUS", #"DURATION", #"WHERE"
    -- A WHERE column when any task went to an agent (an agent's name, or "local").
    local remote = false
    for i, r in ipairs(results) do
      counts[r.status] = counts[r.status] + 1
      local duration = r.status == "skipped" and "-" or core.format_duration(r.duration)
      durations[i] = duration
      w1, w2, w3 = math.max(w1, #r.ref), math.max(w2, #r.status), math.max(w3, #duration)
      if r.where then
        remote = true
        w4 = math.max(w4, #r.where)
      end
    end
    -- Padded by hand: string.format's widths stop at 99 (a long task name is no error).
    local widths = remote and { w1, w2, w3, w4 } or { w1, w2, w3 }
    local function row(...)
      local cells = { ... }
      for i, width in ipairs(widths) do
        cells[i] = cells[i] .. string.rep(" ", width - #cells[i])
      end
      return table.concat(cells, "  ") .. "\n"
    end
    local header = remote and row("TASK", "STATUS", "DURATION", "WHERE", "MESSAGE")
      or row("TASK", "STATUS", "DURATION", "MESSAGE")
    -- Written a few hundred rows at a time: stderr is unbuffered, and a write per row is most
    -- of the cost of a table of 100,000 tasks.
    local lines = { "\n", header }
    for i, r in ipairs(results) do
      if remote then
        lines[#lines + 1] = row(r.ref, r.status, durations[i], r.where or "local", first_line(r.message))
      else
        lines[#lines + 1] = row(r.ref, r.status, durations[i], first_line(r.message))
      end
      if #lines == 512 then
        out:write(table.concat(lines))
        lines = {}
      end
    end
    out:write(table.concat(lines))
    out:write(string.format("%d task(s): %d succeeded, %d failed, %d skipped in %s\n",
      #results, counts.succeeded, counts.failed + counts.aborted, counts.skipped, core.format_duration(elapsed)))
    if aborted_by then
      out:write(string.format("the run was aborted by %s\n", aborted_by))
    end
  end

  return reporter
end

return M
