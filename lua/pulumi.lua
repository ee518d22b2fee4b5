---@meta pulumi
--- The Go sloth-runner's pulumi module, over the real `pulumi` (global `pulumi`, or
--- `require("pulumi")`). Every call runs `pulumi` with an argument vector (no shell) and returns
--- `result, err`: `err` nil on success, else an error value naming the pulumi command, with its
--- `stdout` and `stderr`. Stack commands run in the stack's `workdir` (relative to the task's
--- workdir), other calls in the task's workdir; all with the task's `env`, `~/.pulumi/bin`
--- first on PATH, and stop with the task. A missing `pulumi` gives the error
--- "`pulumi` is not installed (needed by stack:up)".
---
--- Where the Go code and its documentation differ:
--- - The Go code ran `bash -c "source VENV/bin/activate && pulumi login URL && pulumi …"`.
---   Here no shell runs: a venv puts its `bin` first on PATH and sets `VIRTUAL_ENV` (a venv
---   that does not exist is an error, as `source` failed), and `pulumi login URL` runs before
---   each command, as there. Options `login_url` and `venv_path` (used by examples, ignored by
---   the Go code) work as `login` and `venv`.
--- - `up`, `preview`, `destroy` returned everything pulumi printed in `stdout` and an empty
---   `stderr`; here `stderr` is pulumi's stderr. `refresh` and the options `config` and `args`
---   were documented, not in the code; `non_interactive` was used by examples; all are here.
--- - `outputs` ran `pulumi stack output --json` on the selected stack and raised on failure;
---   here it names the stack and returns `nil, err`, as documented.
--- - `config`, `config_map` and `select` raised on failure and returned the stack; here they
---   return the stack, or a failed `pulumi.Result` and the error, on which a chained method
---   raises (`stack:select():config_map(t)` stops at a failed `select`, as the raise did).
---   `config set` ends its flags with `--`, so a value such as "-1" is not read as a flag.
--- - `pulumi.login` was documented, not in the code; it is here. `pulumi.stack` raises when
---   called wrongly (no `workdir`), as the Go code did.
pulumi = {}

--- What a pulumi command did.
---@class pulumi.Result
---@field success boolean
---@field stdout string
---@field stderr string
---@field code? integer the exit code (0 on success; nil when killed or not started)
---@field command string the command, as `pulumi up --stack dev --yes`
---@field error? pulumi.Error when it failed
---@field name? string the stack's name (a failed `config`, `config_map` or `select`)

--- How a pulumi call failed: `kind` "exit", "signal", "timeout", "io" (pulumi not installed,
--- the workdir or the venv missing), or "invalid" (`outputs` that are not JSON); the message
--- names the command and ends with its stderr.
---@class pulumi.Error: sloth.Error
---@field command? string
---@field code? integer
---@field stdout? string
---@field stderr? string
---@field not_found? boolean `pulumi` is not installed

---@class pulumi.StackOptions
---@field workdir string the Pulumi project's directory (required), relative to the task's workdir
---@field login? string a backend URL: `pulumi login URL` runs before each command
---@field login_url? string the same as `login`
---@field venv? python.Venv|{ path: string }|string a venv whose `bin` comes first on PATH
---@field venv_path? string the same as `venv`

---@class pulumi.UpdateOptions
---@field yes? boolean `--yes`
---@field skip_preview? boolean `--skip-preview`
---@field non_interactive? boolean `--non-interactive`
---@field config? table<string, string|number|boolean|table> `--config KEY=VALUE` each, in sorted order (a table as JSON)
---@field args? string[] more arguments, at the end

--- A stack: the last `config`/`select` command's `success`, `stdout`, `stderr`.
---@class pulumi.Stack
---@field name string
---@field workdir string absolute
---@field login? string
---@field venv? string the venv's absolute path
---@field success boolean
---@field stdout string
---@field stderr string
local Stack = {}

--- A stack of the project in `opts.workdir`; raises without one.
---@param name string the stack, as `org/project/dev`
---@param opts pulumi.StackOptions
---@return pulumi.Stack stack
function pulumi.stack(name, opts) end

--- `pulumi up --stack NAME [options]`.
---@param opts? pulumi.UpdateOptions
---@return pulumi.Result result
---@return pulumi.Error? err
function Stack:up(opts) end

--- `pulumi preview --stack NAME [options]`.
---@param opts? pulumi.UpdateOptions
---@return pulumi.Result result
---@return pulumi.Error? err
function Stack:preview(opts) end

--- `pulumi destroy --stack NAME [options]`.
---@param opts? pulumi.UpdateOptions
---@return pulumi.Result result
---@return pulumi.Error? err
function Stack:destroy(opts) end

--- `pulumi refresh --stack NAME [options]`.
---@param opts? pulumi.UpdateOptions
---@return pulumi.Result result
---@return pulumi.Error? err
function Stack:refresh(opts) end

--- `pulumi stack output --json --stack NAME`, parsed.
---@return table? outputs
---@return pulumi.Error? err
function Stack:outputs() end

--- `pulumi config set --stack NAME [--secret] -- KEY VALUE`.
---@param key string
---@param value string|number|boolean|table a table is set as its JSON
---@param secret? boolean `--secret`
---@return pulumi.Stack|pulumi.Result stack
---@return pulumi.Error? err
function Stack:config(key, value, secret) end

--- `stack:config(key, value)` for each key, in sorted order; stops at the first failure.
---@param values table<string, string|number|boolean|table>
---@return pulumi.Stack|pulumi.Result stack
---@return pulumi.Error? err
function Stack:config_map(values) end

--- `pulumi stack select NAME --create`.
---@return pulumi.Stack|pulumi.Result stack
---@return pulumi.Error? err
function Stack:select() end

--- `pulumi login [URL]`.
---@param url? string the backend; none: the Pulumi service
---@return pulumi.Result result
---@return pulumi.Error? err
function pulumi.login(url) end

--- `pulumi plugin install KIND NAME [VERSION] --reinstall`.
---@param name string
---@param opts? { kind?: string, version?: string } kind: default "language"
---@return pulumi.Result result
---@return pulumi.Error? err
function pulumi.install_plugin(name, opts) end

return pulumi
