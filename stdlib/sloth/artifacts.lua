--- Artifacts: files a task saves after success (`artifacts`, globs relative to its workdir)
--- and files a task needs before it runs (`consumes`, names saved earlier in the run). They
--- live under `.sloth/artifacts/<run-id>/` beside the pipeline.
local exec = require("exec")
local paths = require("sloth.paths")

local M = {}

--- A store for one run; its directory is created when the first artifact is saved.
---@param pipeline_dir string
function M.new_store(pipeline_dir)
  local run_id = os.date("!%Y%m%dT%H%M%SZ") .. string.format("-%06x", math.random(0, 0xffffff))
  return { dir = paths.join(pipeline_dir, ".sloth/artifacts/" .. run_id), saved = {} }
end

local function copy(from, to)
  local _, err_out, err = exec.run({ "sh", "-c", 'mkdir -p -- "$(dirname -- "$2")" && cp -a -- "$1" "$2"', "sh", from, to })
  if err then
    return nil, (err_out:gsub("%s+$", "")) ~= "" and err_out:gsub("%s+$", "") or tostring(err)
  end
  return true
end

--- Files in `workdir` matching `glob` (shell pattern rules), relative to `workdir`.
local function expand(glob, workdir)
  local out, _, err = exec.run(
    { "sh", "-c", 'for f in $1; do [ -e "$f" ] && printf "%s\\n" "$f"; done; true', "sh", glob },
    { cwd = workdir }
  )
  local matches = {}
  if not err then
    for line in out:gmatch("[^\n]+") do
      matches[#matches + 1] = line
    end
  end
  return matches
end

--- Saves what `task.artifacts` matches in `workdir`; a glob matching nothing is an error.
---@return boolean? ok, string? err
function M.save(store, task, workdir)
  for _, glob in ipairs(task.artifacts) do
    local matches = expand(glob, workdir)
    if #matches == 0 then
      return nil, string.format("artifacts: nothing in %s matches '%s'", workdir, glob)
    end
    for _, name in ipairs(matches) do
      local ok, err = copy(paths.join(workdir, name), paths.join(store.dir, name))
      if not ok then
        return nil, string.format("artifacts: saving '%s': %s", name, err)
      end
      store.saved[paths.normalize(name)] = task.group .. "/" .. task.name
    end
  end
  return true
end

--- Copies every name in `task.consumes` from the store into `workdir`.
---@return boolean? ok, string? err
function M.restore(store, task, workdir)
  for _, name in ipairs(task.consumes) do
    local key = paths.normalize(name)
    if not store.saved[key] then
      local known = {}
      for saved in pairs(store.saved) do
        known[#known + 1] = saved
      end
      table.sort(known)
      return nil, string.format("consumes: no artifact '%s' in this run (saved so far: %s)", name,
        #known > 0 and table.concat(known, ", ") or "none")
    end
    local ok, err = copy(paths.join(store.dir, key), paths.join(workdir, key))
    if not ok then
      return nil, string.format("consumes: copying '%s': %s", name, err)
    end
  end
  return true
end

return M
