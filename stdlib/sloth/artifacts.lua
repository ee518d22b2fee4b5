--- Artifacts: files a task saves after success (`artifacts`, globs relative to its workdir)
--- and files a task needs before it runs (`consumes`, names saved earlier in the run). They
--- live under `.sloth/artifacts/<run-id>/` beside the pipeline.
local fs = require("fs")
local paths = require("sloth.paths")

local M = {}

--- A store for one run; its directory is created when the first artifact is saved.
---@param pipeline_dir string
function M.new_store(pipeline_dir)
  -- From the system's randomness, not `math.random`, which a pipeline may seed with the time:
  -- runs started in the same second get their own directories.
  local run_id = os.date("!%Y%m%dT%H%M%SZ") .. "-" .. require("sloth.core").random_id()
  local state = paths.absolute(paths.join(pipeline_dir, ".sloth"))
  return { dir = paths.join(pipeline_dir, ".sloth/artifacts/" .. run_id), state = state, saved = {} }
end

--- Whether `path` (absolute, normalized) is `dir` or beneath it.
local function within(path, dir)
  return path == dir or path:sub(1, #dir + 1) == dir .. "/"
end

--- Paths in `workdir` that `glob` matches (`fs.glob`: `**` crosses directories), relative to
--- it, without the run state beside the pipeline: a `**` run in the pipeline's directory must
--- not save earlier runs' artifacts again.
local function expand(store, glob, workdir)
  local matches, err = fs.glob(glob, { root = workdir })
  if not matches then
    return nil, err
  end
  local base = paths.absolute(workdir)
  local kept = {}
  for _, name in ipairs(matches) do
    if not within(paths.normalize(paths.join(base, name)), store.state) then
      kept[#kept + 1] = name
    end
  end
  return kept
end

--- Whether a directory holding `key` was already copied whole.
local function covered(copied, key)
  local parent = paths.dirname(key)
  while parent ~= "." and parent ~= "/" do
    if copied[parent] then
      return true
    end
    parent = paths.dirname(parent)
  end
  return false
end

--- Saves what `task.artifacts` matches in `workdir`; a glob matching nothing is an error.
---@return boolean? ok, string? err
function M.save(store, task, workdir)
  -- Directories copied whole: what a pattern matches beneath them is already saved.
  local copied = {}
  for _, glob in ipairs(task.artifacts) do
    local matches, glob_err = expand(store, glob, workdir)
    if not matches then
      return nil, string.format("artifacts: pattern '%s': %s", glob, glob_err)
    end
    if #matches == 0 then
      return nil, string.format("artifacts: nothing in %s matches '%s'", workdir, glob)
    end
    for _, name in ipairs(matches) do
      local key = paths.normalize(name)
      if not covered(copied, key) then
        local from = paths.join(workdir, name)
        local err = fs.copy(from, paths.join(store.dir, key))
        if err then
          return nil, string.format("artifacts: saving '%s': %s", name, err)
        end
        local stat = fs.stat(from)
        copied[key] = stat ~= nil and stat.type == "dir"
      end
      store.saved[key] = task.group .. "/" .. task.name
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
    local err = fs.copy(paths.join(store.dir, key), paths.join(workdir, key))
    if err then
      return nil, string.format("consumes: copying '%s': %s", name, err)
    end
  end
  return true
end

return M
