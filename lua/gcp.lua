---@meta gcp
--- The Go sloth-runner's gcp module, over the real `gcloud` (global `gcp`, or
--- `require("gcp")`): the client chains of its code and the `gcp.exec(args)` of its docs.
--- Commands run without a shell in the task's workdir, with the task's `env`, stopping with
--- the task (timeout, cancellation). A client's commands run as `gcloud --project PROJECT …`
--- (when it has one) and ask for `--format=json`; the parsed output is `result.json`. A
--- missing `gcloud` gives the error "`gcloud` is not installed (needed by instances:list)".
---
--- Every call returns `value, err`: `err` an error value naming the command and keeping its
--- stdout and stderr, which concatenates as its text. A listing's result keeps the Go
--- module's `success`, `stdout`, `stderr`, and is returned on failure too. A missing or wrong
--- argument is `nil, err` with `kind` "invalid" and `field` naming it. Where the Go code
--- raised (a service account without a project, `create`, `add_iam_binding`), these return
--- the error instead; a method chained on a failed service-account call raises, so a chain
--- stops at its first failure as it did. Unlike the Go code, a service account's commands use
--- its own project (the one given to `service_account`, else the client's).
gcp = {}

--- What a gcloud command did.
---@class gcp.Result
---@field success boolean
---@field stdout string
---@field stderr string
---@field exit_code integer 0 on success; -1 when gcloud did not exit by itself (not started, killed, timed out)
---@field command string the command, as `gcloud --project p compute instances list --format=json`
---@field json? any stdout parsed, when it is a JSON array or object (a listing's: always, `{}` when it printed nothing)
---@field existed? boolean `sa:create`: the account already existed
---@field error? gcp.Error when it failed

--- How a call failed: `kind` "exit", "signal", "timeout", "io" (gcloud not installed) or
--- "invalid" (an argument, or a listing that is not JSON); it prints as
--- `instances:list: gcloud … exited with code 1: <stderr>`.
---@class gcp.Error: sloth.Error
---@field command? string
---@field code? integer
---@field stdout? string
---@field stderr? string
---@field field? string the argument at fault ("invalid")
---@field not_found? boolean `gcloud` is not installed

---@class gcp.Client
---@field project? string
local Client = {}

--- What `:list()` runs: `gcloud [--project P] … list --format=json`.
---@class gcp.Listing
local Listing = {}

---@class gcp.Compute
---@field zone? string
---@field instances fun(self): gcp.Listing `compute instances list [--zones ZONE]`

---@class gcp.Storage
---@field buckets fun(self): gcp.Listing `storage buckets list`

---@class gcp.Sql
---@field instances fun(self): gcp.Listing `sql instances list`

---@class gcp.Gke
---@field clusters fun(self): gcp.Listing `container clusters list`

--- A service account, with the last command's `success`, `stdout`, `stderr`, `json`.
---@class gcp.ServiceAccount
---@field name string
---@field project string
---@field email string NAME@PROJECT.iam.gserviceaccount.com
---@field success boolean
---@field stdout string
---@field stderr string
local ServiceAccount = {}

--- `gcloud args...`, as given.
---@param args string[]
---@return gcp.Result? result nil only when an argument is wrong
---@return gcp.Error? err
function gcp.exec(args) end

--- A client; `project` goes before every command as `--project`.
---@param opts? { project?: string }
---@return gcp.Client? client
---@return gcp.Error? err
function gcp.client(opts) end

--- Compute Engine, in `zone` (`--zones`) or all.
---@param opts? { zone?: string }
---@return gcp.Compute? compute
---@return gcp.Error? err
function Client:compute(opts) end

---@return gcp.Storage
function Client:storage() end

---@return gcp.Sql
function Client:sql() end

---@return gcp.Gke
function Client:gke() end

--- A service account of `project` (default: the client's; one is required).
---@param name string
---@param project? string
---@return gcp.ServiceAccount? account
---@return gcp.Error? err
function Client:service_account(name, project) end

--- The listing: the result, with `json` the parsed list; returned on failure too.
---@return gcp.Result result
---@return gcp.Error? err
function Listing:list() end

--- `gcloud --project P iam service-accounts create NAME [--display-name D] --format=json`; an
--- account that already exists is a success (`existed`), as in the Go code.
---@param opts? { display_name?: string }
---@return gcp.ServiceAccount|gcp.Result? account the account (chains), or the failed result
---@return gcp.Error? err
function ServiceAccount:create(opts) end

--- `gcloud --project P projects add-iam-policy-binding P --member M --role R --format=json`.
---@param opts { member: string, role: string }
---@return gcp.ServiceAccount|gcp.Result? account the account (chains), or the failed result
---@return gcp.Error? err
function ServiceAccount:add_iam_binding(opts) end

return gcp
