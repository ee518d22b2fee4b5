-- git: the Go tool's module over the real `git`, against a bare repository made here (no
-- network): clone, add, commit, tag, push, checkout, pull, repo, result; failures as error
-- values that keep stderr; a chain stops at its first failure; a missing git said as such.
local h = require("_helpers")
local exec = require("exec")

assert(git == require("git"), "git is the same table as a global and through require")

local workdir = h.tmpdir()
local home = h.tmpdir()
-- Commits need an identity; nothing of the user's configuration may leak in.
local ENV = { HOME = home, GIT_CONFIG_NOSYSTEM = "1", GIT_AUTHOR_NAME = "Sloth", GIT_AUTHOR_EMAIL = "sloth@example.invalid",
  GIT_COMMITTER_NAME = "Sloth", GIT_COMMITTER_EMAIL = "sloth@example.invalid" }

local function git_out(...)
  local out, err_out, err = exec.command("git", ...)
  assert(err == nil, tostring(err) .. ": " .. err_out)
  return (out:gsub("%s+$", ""))
end

local function run(fn)
  local summary = h.run({ g = { workdir = workdir, tasks = { { name = "t", env = ENV, command = fn } } } })
  local result = summary.by_group.g.t
  assert(result.status == "succeeded", tostring(result.message))
  return result.outputs
end

run(function()
  git_out("init", "--bare", "--initial-branch=main", "origin.git")

  -- clone: relative paths land in the task's workdir; the result carries success and output.
  local repo, err = git.clone(workdir .. "/origin.git", "work")
  assert(err == nil, tostring(err))
  assert(repo.success == true and repo.path == workdir .. "/work", repo.path)
  assert(repo.stderr:find("Cloning into 'work'", 1, true), repo.stderr)

  -- add, commit, tag and push, chained as the Go examples write them.
  h.write(workdir .. "/work/a.txt", "one\n")
  local pushed, push_err = repo:add("a.txt"):commit("first"):tag("v1", { message = "one" })
    :push({ remote = "origin", branch = "main", tags = true })
  assert(push_err == nil, tostring(push_err))
  assert(pushed == repo and repo.success)
  assert(git_out("--git-dir=" .. workdir .. "/origin.git", "log", "--format=%s", "main") == "first")
  assert(git_out("--git-dir=" .. workdir .. "/origin.git", "tag", "-l", "-n1") == "v1              one")

  -- checkout { create = true } makes the branch; without it, switches.
  assert(select(2, repo:checkout("feature", { create = true })) == nil)
  assert(git_out("-C", "work", "rev-parse", "--abbrev-ref", "HEAD") == "feature")
  assert(select(2, repo:checkout("main")) == nil)

  -- pull: a second clone sees what the first pushes next.
  local other = assert(git.clone(workdir .. "/origin.git", "other"))
  h.write(workdir .. "/work/b.txt", "two\n")
  assert(select(2, repo:add({ "b.txt" }):commit("second"):push()) == nil)
  local pulled, pull_err = other:pull()
  assert(pull_err == nil, tostring(pull_err))
  assert(pulled == other and h.read(workdir .. "/other/b.txt") == "two\n")

  -- A failure: the failed result and an error value naming the command, stderr kept.
  local result, failure = repo:checkout("no-such-branch")
  assert(result.success == false and result ~= repo)
  assert(failure.kind == "exit" and failure.code == 1, tostring(failure))
  assert(failure.stderr:find("pathspec 'no-such-branch'", 1, true), failure.stderr)
  assert(tostring(failure):find("repo:checkout: git checkout no-such-branch exited with code 1: error: pathspec", 1, true),
    tostring(failure))
  local last, last_err = repo:result()
  assert(last.success == false and last_err == failure and repo.success == false)
  -- A chain stops there, saying why; the repository itself stays usable.
  local ok, message = pcall(function() return repo:checkout("no-such-branch"):pull() end)
  assert(not ok and tostring(message):find("git: cannot call pull: the previous git call failed: repo:checkout:", 1, true),
    tostring(message))
  assert(select(2, repo:checkout("feature")) == nil and repo.success == true)

  -- clone failures keep git's words too.
  local failed_clone, clone_err = git.clone(workdir .. "/missing.git", "nothing")
  assert(failed_clone.success == false and failed_clone.stderr:find("does not exist", 1, true), failed_clone.stderr)
  assert(tostring(clone_err):find("git.clone: git clone -- " .. workdir .. "/missing.git nothing exited with code 128", 1,
    true), tostring(clone_err))

  -- git.repo opens an existing working tree; a directory that is not one, or none, fails.
  local opened, open_err = git.repo("work")
  assert(open_err == nil and opened.path == workdir .. "/work" and opened.stdout == workdir .. "/work\n", opened.stdout)
  assert(select(2, opened:checkout("main")) == nil)
  local _, not_repo = git.repo(".")
  assert(not_repo and not_repo.stderr:find("not a git repository", 1, true), tostring(not_repo))
  local _, no_dir = git.repo("nowhere")
  assert(no_dir.kind == "io" and tostring(no_dir) == "git.repo: " .. workdir .. "/nowhere is not a directory", tostring(no_dir))

  -- A working tree removed after it was opened: an error value too, not a raise.
  local gone = assert(git.clone(workdir .. "/origin.git", "gone"))
  assert(exec.command("rm", "-rf", workdir .. "/gone") == "")
  local gone_result, gone_err = gone:pull()
  assert(gone_result.success == false and gone_err.kind == "io", tostring(gone_err))
  assert(tostring(gone_err) == "repo:pull: " .. workdir .. "/gone is not a directory", tostring(gone_err))

  -- Called wrongly: a Lua error naming the argument.
  ok, message = pcall(git.clone, workdir .. "/origin.git")
  assert(not ok and tostring(message):find("git.clone: expected a non-empty string for 'path', got nil", 1, true),
    tostring(message))
  return true
end)

-- Without git on PATH: said as such, not as a spawn error.
local empty = h.tmpdir()
local summary = h.run({ g = { workdir = workdir, tasks = { { name = "t", env = { PATH = empty }, command = function()
  local result, err = git.clone(workdir .. "/origin.git", "never")
  assert(result.success == false and err.not_found == true)
  assert(tostring(err) == "`git` is not installed (needed by git.clone)", tostring(err))
  return true
end } } } })
assert(summary.ok, tostring(summary.by_group.g.t.message))
