--- `git`: the Go sloth-runner's git module, as a thin layer over `exec` (global `git`, or
--- `require("git")`).
---
--- Every call runs the real `git` with an argument vector (no shell) and returns `result, err`:
--- `err` is nil on success, else an error value (`sloth.Error`, as `exec.run` returns) that
--- names the git command and carries its stdout and stderr. Where the Go code raised and its
--- examples read `.success`, both styles work: the result carries `success`, `stdout` and
--- `stderr`. A repository's methods return the repository (so calls chain, as in the Go
--- examples) with the last command's `success`, `stdout`, `stderr`; when one fails they return
--- a failed result instead, on which a chained method raises naming the failure — a chain stops
--- at its first failure, as the Go module's raising did, while `local r, err = repo:pull()`
--- keeps the repository usable.
---
--- Paths resolve against the running task's workdir (where the repository is cloned, and
--- which `git.repo(path)` opens); the repository keeps its absolute path, so it can be handed
--- to another task. Commands run with the task's `env`, and stop with it (timeout,
--- cancellation).
local tool = require("sloth.tool")

local M = {}

local Repo = {}
Repo.__index = Repo

local Failed = tool.failed_meta("git", Repo)
local absolute, check_string = tool.absolute, tool.check_string

--- Runs `git args...` in `dir` (nil: the task's workdir); the result table and the error value.
local function run(call, dir, args)
  local argv = { "git" }
  table.move(args, 1, #args, 2, argv)
  return tool.run(argv, { call = call, cwd = dir })
end

--- The repository after a successful call: it carries that call's result.
local function succeeded(repo, result)
  repo.success, repo.stdout, repo.stderr = true, result.stdout, result.stderr
  repo.last, repo.last_error = result, nil
  return repo, nil
end

--- A failed call: the repository remembers it (`:result()`); the caller gets the failed result.
local function failed(repo, result, err)
  repo.success, repo.stdout, repo.stderr = false, result.stdout, result.stderr
  repo.last, repo.last_error = result, err
  result.path = repo.path
  return setmetatable(result, Failed), err
end

local function new_repo(path)
  return setmetatable({ path = path, success = true, stdout = "", stderr = "" }, Repo)
end

--- Runs a git command in the repository.
local function in_repo(repo, call, args)
  local result, err = run(call, repo.path, args)
  if err then
    return failed(repo, result, err)
  end
  return succeeded(repo, result)
end

--- `git clone -- url path` in the task's workdir; the repository at `path`.
---@return table repo_or_failed, table? err
function M.clone(url, path)
  check_string("git.clone", "url", url)
  check_string("git.clone", "path", path)
  local repo = new_repo(absolute(path))
  local result, err = run("git.clone", nil, { "clone", "--", url, path })
  if err then
    return failed(repo, result, err)
  end
  return succeeded(repo, result)
end

--- An existing repository (its working tree, or any directory inside it).
---@return table repo_or_failed, table? err
function M.repo(path)
  check_string("git.repo", "path", path)
  return in_repo(new_repo(absolute(path)), "git.repo", { "rev-parse", "--show-toplevel" })
end

--- `git checkout [-b] branch`: `{ create = true }` makes the branch.
function Repo:checkout(branch, opts)
  check_string("repo:checkout", "branch", branch)
  local args = { "checkout" }
  if opts and opts.create then
    args[#args + 1] = "-b"
  end
  args[#args + 1] = branch
  return in_repo(self, "repo:checkout", args)
end

--- `git pull [remote [branch]]`.
function Repo:pull(opts)
  local args = { "pull" }
  if opts and opts.remote then
    args[#args + 1] = opts.remote
    args[#args + 1] = opts.branch
  end
  return in_repo(self, "repo:pull", args)
end

--- `git push [--set-upstream] [--tags] [remote [branch]]`.
function Repo:push(opts)
  opts = opts or {}
  local args = { "push" }
  if opts.set_upstream then
    args[#args + 1] = "--set-upstream"
  end
  if opts.tags then
    args[#args + 1] = "--tags"
  end
  if opts.remote then
    args[#args + 1] = opts.remote
    args[#args + 1] = opts.branch
  end
  return in_repo(self, "repo:push", args)
end

--- `git add -- paths...` (a path or a list of them).
function Repo:add(paths_to_add)
  local args = { "add", "--" }
  if type(paths_to_add) == "string" then
    args[#args + 1] = paths_to_add
  elseif type(paths_to_add) == "table" and #paths_to_add > 0 then
    for _, path in ipairs(paths_to_add) do
      args[#args + 1] = tostring(path)
    end
  else
    error("repo:add: expected a path or a list of paths for 'paths', got " .. type(paths_to_add), 2)
  end
  return in_repo(self, "repo:add", args)
end

--- `git commit -m message` (`{ all = true }`: `-a`; `{ allow_empty = true }`).
function Repo:commit(message, opts)
  check_string("repo:commit", "message", message)
  local args = { "commit", "-m", message }
  if opts and opts.all then
    args[#args + 1] = "--all"
  end
  if opts and opts.allow_empty then
    args[#args + 1] = "--allow-empty"
  end
  return in_repo(self, "repo:commit", args)
end

--- `git tag name`, annotated with `{ message = "…" }`.
function Repo:tag(name, opts)
  check_string("repo:tag", "name", name)
  local args = { "tag" }
  if opts and opts.message then
    table.move({ "-a", "-m", opts.message }, 1, 3, 2, args)
  end
  args[#args + 1] = name
  return in_repo(self, "repo:tag", args)
end

--- The last command's result (`{ success, stdout, stderr, command }`) and its error.
function Repo:result()
  return self.last or { success = true, stdout = "", stderr = "" }, self.last_error
end

return M
