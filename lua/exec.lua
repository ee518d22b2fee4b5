---@meta exec
--- Running commands. Available as the global `exec` and through `require("exec")`.
exec = {}

---@class exec.Options
---@field cwd? string working directory; relative paths resolve against the task's workdir
---@field env? table<string, string|number|boolean> added to the inherited environment (and the task's `env`)
---@field stdin? string written to the command's standard input
---@field timeout? number|string seconds, or a duration such as "100ms", "10s", "1m"; kills the whole process tree
---@field stream? boolean show each output line live as a log line of the running task

--- How a command failed: `kind` is "exit", "signal", "timeout", or "io" when the program could
--- not start; `message` says how it ended, and `tostring(err)` gives the same.
---@class exec.Error: sloth.Error
---@field code? integer exit code (127 when the program could not start)
---@field signal? integer the signal that killed it
---@field timed_out boolean
---@field not_found? boolean when the program could not start: true if it does not exist (not installed, not on PATH)

--- Runs a command and waits for it without blocking other running tasks. A string runs with
--- `sh -c`; a table is an argument vector run without a shell. The command runs in its own
--- process group, which is killed when it ends, times out or the run is cancelled.
---@param cmd string|string[]
---@param opts? exec.Options
---@return string stdout
---@return string stderr
---@return exec.Error? err nil when the command exited with 0
function exec.run(cmd, opts) end

--- Runs a program with these arguments, exactly as given (no shell: `$HOME` or `*` stay
--- literal), as `exec.run({ cmd, ... })` does: in the task's workdir, with its `env`, killed with
--- its process tree when the task times out or the run is cancelled. The Go sloth-runner's
--- spelling. A program that does not exist is an `err` naming it (`kind` "io", `not_found`).
---@param cmd string the program: a name looked up on PATH, or a path
---@param ... string|number its arguments
---@return string stdout
---@return string stderr
---@return exec.Error? err nil when the command exited with 0
function exec.command(cmd, ...) end

return exec
