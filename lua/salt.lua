---@meta salt
--- The Go sloth-runner's salt module, over the real `salt` and `salt-key` (global `salt`, or
--- `require("salt")`). Every call runs them with an argument vector (no shell) and
--- `--out=json`, and returns `result, err`: `err` nil on success, else an error value naming
--- the command, with its `stdout` and `stderr`. Commands run in the task's workdir with its
--- `env`, and stop with it. A missing `salt` gives the error
--- "`salt` is not installed (needed by target:cmd)".
---
--- Where the Go code and its documentation differ:
--- - `target:cmd` returned `stdout, stderr, err` in the Go code (one example read four values,
---   `success, stdout, stderr, err`); the documentation a table `{ success, stdout, stderr }`
---   whose `stdout` is the parsed JSON; another example chains `:cmd(…):result()`. Here
---   `target:cmd` returns `result, err`: the table, with `stdout` the text (as the code) and
---   `data` the parsed JSON, and `result:result()` gives the code's `stdout, stderr, err`.
---   A script that reads `local out, stderr, err = target:cmd(…)` must change.
--- - The Go code always targeted with `-L` (a list), whatever `expr_form`; here `expr_form`
---   decides ("glob", salt's default, adds no flag). Commands run with `--static`, so salt
---   prints one JSON document.
--- - `client{ config = DIR }` was the code's (`--config-dir`); `config_path`, documented as the
---   master's config file, works too (its directory is used).
--- - `target:ping()`, `salt.target`, `salt.key` and `result:result()` were used by examples,
---   not in the code; they are here. `target:result()` (the code's) gives the last command's
---   `stdout, stderr, err`. Called wrongly (a bad `expr_form`), a function raises.
salt = {}

--- What a salt or salt-key command did.
---@class salt.Result
---@field success boolean
---@field stdout string what it printed
---@field stderr string
---@field data? any `stdout` parsed as JSON; nil when it is not JSON
---@field code? integer the exit code (0 on success; nil when killed or not started)
---@field command string the command, as `salt --out=json --static web1 test.ping`
---@field error? salt.Error when it failed
---@field minions? string[] (`salt.key.accept`/`delete`) the minion IDs salt-key acted on; empty when none matched
local Result = {}

--- The Go module's three values.
---@return string stdout
---@return string stderr
---@return salt.Error? err
function Result:result() end

--- How a salt call failed: `kind` "exit", "signal", "timeout" (also `wait_and_accept` finding
--- no key in time), "io" (not installed), or "invalid" (salt-key printed no JSON); the message
--- names the command and ends with its stderr.
---@class salt.Error: sloth.Error
---@field command? string
---@field code? integer
---@field stdout? string
---@field stderr? string
---@field not_found? boolean the program is not installed

---@alias salt.ExprForm "glob"|"list"|"grain"|"grain_pcre"|"pcre"|"pillar"|"pillar_pcre"|"compound"|"nodegroup"|"ipcidr"|"range"

---@class salt.Client
---@field config? string the configuration directory (`--config-dir`), absolute
local Client = {}

---@class salt.Target
---@field client salt.Client
---@field target string
---@field expr_form salt.ExprForm
---@field last? salt.Result the last command's result
local Target = {}

--- A client of the salt master.
---@param opts? { config?: string, config_path?: string } config: the configuration directory; config_path: it, or the master's config file
---@return salt.Client client
function salt.client(opts) end

--- `salt.client():target(tgt, expr_form)`.
---@param tgt string
---@param expr_form? salt.ExprForm default "glob"
---@return salt.Target target
function salt.target(tgt, expr_form) end

--- Minions matching `tgt`.
---@param tgt string
---@param expr_form? salt.ExprForm default "glob"; "list" is `-L`, "grain" `-G`, "compound" `-C`, …
---@return salt.Target target
function Client:target(tgt, expr_form) end

--- `salt --out=json --static [--config-dir=DIR] [FLAG] TGT FN ARGS...`; a table argument is
--- passed as its JSON.
---@param fn string as "state.apply", "cmd.run"
---@param ... string|number|boolean|table
---@return salt.Result result
---@return salt.Error? err
function Target:cmd(fn, ...) end

--- `target:cmd("test.ping")`: `data` maps each minion that answered to true.
---@return salt.Result result
---@return salt.Error? err
function Target:ping() end

--- The last command's `stdout, stderr, err` (empty strings before any).
---@return string stdout
---@return string stderr
---@return salt.Error? err
function Target:result() end

--- Minion keys, over `salt-key --out=json` (each function also takes `{ config = DIR }`).
---@class salt.Key
salt.key = {}

--- `salt-key --out=json --list=all`: the IDs in each state (a list, empty when none).
---@param opts? { config?: string }
---@return { minions: string[], minions_pre: string[], minions_rejected: string[], minions_denied: string[] }? keys
---@return salt.Error? err
function salt.key.list(opts) end

--- `salt-key --out=json --yes --accept=ID` (salt-key reads ID as a glob).
---@param id string
---@param opts? { config?: string }
---@return salt.Result result `minions`: the IDs accepted
---@return salt.Error? err
function salt.key.accept(id, opts) end

--- `salt-key --out=json --yes --delete=ID` (salt-key reads ID as a glob).
---@param id string
---@param opts? { config?: string }
---@return salt.Result result `minions`: the IDs deleted
---@return salt.Error? err
function salt.key.delete(id, opts) end

--- Waits for a pending key — of minion `opts.id`, or the first of any — polling
--- `salt-key --list=pre` every `interval`, and accepts it. After `timeout` without one: an
--- error of kind "timeout". Stops with the task.
---@param opts? { id?: string, timeout?: number|string, interval?: number|string, config?: string } timeout: default 300 seconds; interval: default 2
---@return string? id the minion whose key was accepted
---@return salt.Error? err
function salt.key.wait_and_accept(opts) end

return salt
