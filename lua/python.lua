---@meta python
--- The Go sloth-runner's python module: virtual environments, over the real `python3` and the
--- venv's own `bin/pip` and `bin/python` (global `python`, or `require("python")`).
--- Commands run with an argument vector (no shell) and return `result, err`: `err` nil on
--- success, else an error value naming the command, with its `stdout` and `stderr`. Paths
--- resolve against the task's workdir; commands run in it, with the task's `env`, and stop with
--- it. A missing `python3` gives the error "`python3` is not installed (needed by venv:create)";
--- a venv not created yet, "/w/.venv/bin/pip does not exist (is the venv created? venv:create())".
---
--- Where the Go code and its documentation differ: the Go code raised when `create` or `pip`
--- failed and returned the venv; its documentation and examples read `.success`, `.stdout`,
--- `.stderr`, `.exit_code` of what they return. Here they return the venv carrying those fields
--- (so `python.venv(p):create():pip("install x")` chains), or on failure a failed
--- `python.Result` and the error — nothing raises except a method chained on a failed call,
--- which stops the chain as the Go module's raise did. As in the Go code, a string of arguments
--- is split at whitespace (pass a list to keep an argument with spaces whole), and `stdout` and
--- `stderr` of results are trimmed (the error value keeps them as printed). `venv:result()` is
--- not in the Go module.
python = {}

--- What a command of the venv did.
---@class python.Result
---@field success boolean
---@field stdout string trimmed
---@field stderr string trimmed
---@field exit_code? integer 0 on success; nil when killed by a signal or not started
---@field command string the command, as `/w/.venv/bin/pip install -r requirements.txt`
---@field error? python.Error when it failed
---@field path? string the venv's path (a failed `create` or `pip`)

--- How a command failed: `kind` "exit", "signal", "timeout", or "io" (the program missing,
--- or the workdir gone); the message names the command and ends with its stderr.
---@class python.Error: sloth.Error
---@field command? string
---@field code? integer
---@field stdout? string as printed
---@field stderr? string as printed
---@field not_found? boolean the program does not exist

--- A virtual environment: the last `create`/`pip` command's `success`, `stdout`, `stderr`,
--- `exit_code`.
---@class python.Venv
---@field path string made absolute against the task's workdir
---@field success boolean
---@field stdout string
---@field stderr string
---@field exit_code? integer
local Venv = {}

--- A virtual environment at `path`; nothing is made until `:create()`.
---@param path string relative to the task's workdir
---@return python.Venv venv
function python.venv(path) end

--- Whether the venv exists (its `bin/activate` is there).
---@return boolean
function Venv:exists() end

--- `python3 -m venv PATH`.
---@param opts? { python?: string } python: the interpreter to make it with (default "python3")
---@return python.Venv|python.Result venv
---@return python.Error? err
function Venv:create(opts) end

--- `PATH/bin/pip args...`.
---@param args string|string[] a string is split at whitespace; a list is passed as it is
---@return python.Venv|python.Result venv
---@return python.Error? err
function Venv:pip(args) end

--- `PATH/bin/python args...`: the command's result (not the venv).
---@param args string|string[] a string is split at whitespace; a list is passed as it is
---@return python.Result result
---@return python.Error? err
function Venv:exec(args) end

--- The last command's result and its error (nil when it succeeded).
---@return python.Result result
---@return python.Error? err
function Venv:result() end

return python
