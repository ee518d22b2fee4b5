---@meta git
--- The Go sloth-runner's git module, over the real `git` (global `git`, or `require("git")`).
--- Every call returns `result, err`: `err` nil on success, else an error value naming the git
--- command, with its `stdout` and `stderr`. Paths resolve against the task's workdir; commands
--- run with the task's `env` and stop with it. A missing `git` gives the error
--- "`git` is not installed (needed by git.clone)".
---
--- Where the Go code and its documentation differ: the Go code raised on failure, its examples
--- read `.success`/`.stdout`; here both read the result, and nothing raises except a method
--- chained on a failed call (`repo:add("."):commit("m")` stops at a failed `add`, as the Go
--- module's raise did). `git.repo`, `add`, `commit`, `tag` and `result` were documented but
--- absent from the Go code; they are here.
git = {}

--- What a git command did.
---@class git.Result
---@field success boolean
---@field stdout string
---@field stderr string
---@field command string the command, as `git clone -- URL PATH`
---@field error? git.Error when it failed
---@field path? string the repository's path (a failed call's result)

--- How a git command failed: `kind` "exit", "signal", "timeout", or "io" (git not installed,
--- or not a directory); the message names the command and ends with its stderr.
---@class git.Error: sloth.Error
---@field command? string
---@field code? integer
---@field stdout? string
---@field stderr? string
---@field not_found? boolean `git` is not installed

--- A repository: the last command's `success`, `stdout`, `stderr`, and methods that return
--- the repository on success (so calls chain) or a failed `git.Result` and the error.
---@class git.Repo
---@field path string the path it was opened or cloned at, made absolute against the task's workdir
---@field success boolean
---@field stdout string
---@field stderr string
local Repo = {}

--- `git clone -- url path` in the task's workdir.
---@param url string
---@param path string where to clone, relative to the task's workdir
---@return git.Repo|git.Result repo
---@return git.Error? err
function git.clone(url, path) end

--- An existing repository (checked with `git rev-parse`).
---@param path string relative to the task's workdir
---@return git.Repo|git.Result repo
---@return git.Error? err
function git.repo(path) end

--- `git checkout [-b] branch`.
---@param branch string
---@param opts? { create?: boolean } create: make the branch (`-b`)
---@return git.Repo|git.Result repo
---@return git.Error? err
function Repo:checkout(branch, opts) end

--- `git pull [remote [branch]]`.
---@param opts? { remote?: string, branch?: string }
---@return git.Repo|git.Result repo
---@return git.Error? err
function Repo:pull(opts) end

--- `git push [--set-upstream] [--tags] [remote [branch]]`.
---@param opts? { remote?: string, branch?: string, tags?: boolean, set_upstream?: boolean }
---@return git.Repo|git.Result repo
---@return git.Error? err
function Repo:push(opts) end

--- `git add -- paths...`.
---@param paths string|string[]
---@return git.Repo|git.Result repo
---@return git.Error? err
function Repo:add(paths) end

--- `git commit -m message`.
---@param message string
---@param opts? { all?: boolean, allow_empty?: boolean }
---@return git.Repo|git.Result repo
---@return git.Error? err
function Repo:commit(message, opts) end

--- `git tag name` (annotated with `opts.message`).
---@param name string
---@param opts? { message?: string }
---@return git.Repo|git.Result repo
---@return git.Error? err
function Repo:tag(name, opts) end

--- The last command's result and its error (nil when it succeeded).
---@return git.Result result
---@return git.Error? err
function Repo:result() end

return git
